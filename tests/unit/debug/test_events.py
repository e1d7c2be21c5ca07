"""From tshark's field lines to events: which instance and leg, request or response, and the request's
method and path on its response (HTTP/1 by frame, HTTP/2 by stream)."""

from __future__ import annotations

from meshctl.debug.events import Correlator, Leg
from meshctl.debug.tshark import FIELDS, decoder_argv, display_filter, parse_line

LEGS = [
    Leg("books-0", "127.77.3.1", 7002, "inbound"),
    Leg("books-0", "127.77.3.1", 4140, "outbound"),
    Leg("ratings-0", "127.77.4.1", 7003, "inbound", "grpc"),
]


def line(**cells: str) -> str:
    values = {name: "" for name in FIELDS} | {"frame.time_epoch": "1700000000.5", "tcp.stream": "0"}
    values |= {k.replace("_", ".").replace("request.in", "request_in"): v for k, v in cells.items()}
    return "\t".join(values[name] for name in FIELDS) + "\n"


def h1(frame: int, src: str, dst: str, **cells: str) -> str:
    (sh, sp), (dh, dp) = src.split(":"), dst.split(":")
    return line(frame_number=str(frame), ip_src=sh, tcp_srcport=sp, ip_dst=dh, tcp_dstport=dp, **cells)


def test_http1_requests_and_responses_by_leg() -> None:
    correlator = Correlator(LEGS)
    lines = [
        h1(4, "127.0.0.1:5000", "127.77.3.1:7002", http_request_method="GET", http_request_uri="/books/7"),
        h1(6, "127.0.0.1:5001", "127.77.3.1:4140", http_request_method="GET", http_request_uri="/authors/1"),
        h1(9, "127.77.3.1:4140", "127.0.0.1:5001", http_response_code="200", http_request_in="6"),
        h1(11, "127.77.3.1:7002", "127.0.0.1:5000", http_response_code="503", http_request_in="4"),
        h1(12, "127.0.0.1:5000", "127.9.9.9:80", http_request_method="GET", http_request_uri="/elsewhere"),
    ]
    events = [e for text in lines for e in correlator.events(parse_line(text))]  # type: ignore[arg-type]
    assert [(e.instance, e.direction, e.kind, e.method, e.path, e.status) for e in events] == [
        ("books-0", "inbound", "request", "GET", "/books/7", None),
        ("books-0", "outbound", "request", "GET", "/authors/1", None),
        ("books-0", "outbound", "response", "GET", "/authors/1", 200),
        ("books-0", "inbound", "response", "GET", "/books/7", 503),
    ]
    assert events[0].src == "127.0.0.1:5000" and events[0].dst == "127.77.3.1:7002"


def test_http2_headers_by_stream() -> None:
    correlator = Correlator(LEGS)
    request = h1(3, "127.0.0.1:6000", "127.77.4.1:7003", http2_streamid="0,1,1", http2_headers_method="POST",
                 http2_headers_path="/ratings.v1.Ratings/Get")  # fmt: skip
    response = h1(5, "127.77.4.1:7003", "127.0.0.1:6000", http2_streamid="1,1", http2_headers_status="200")
    events = [e for text in (request, response) for e in correlator.events(parse_line(text))]  # type: ignore[arg-type]
    assert [(e.kind, e.method, e.path, e.status) for e in events] == [
        ("request", "POST", "/ratings.v1.Ratings/Get", None),
        ("response", "POST", "/ratings.v1.Ratings/Get", 200),
    ]


def test_lines_that_are_not_packets_are_skipped() -> None:
    assert parse_line("Capturing on '-'\n") is None
    assert parse_line(line(frame_number="x")) is None


def test_the_decoder_declares_the_legs_ports_and_the_filter() -> None:
    argv = decoder_argv("/usr/bin/tshark", [7002, 4140, 7002], [7003], 'http.request.method == "POST"')
    assert argv[:3] == ["/usr/bin/tshark", "-i", "-"]
    assert argv.count("-d") == 3 and "tcp.port==7003,http2" in argv
    assert argv[-1] == display_filter('http.request.method == "POST"')
    assert display_filter(None) == display_filter("http") and "and" not in display_filter(None)
