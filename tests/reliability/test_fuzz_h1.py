"""Fuzzing the HTTP/1.1 sans-IO codec (meshctl/proxy/h1/codec.py).

Properties: the readers raise nothing but the proxy's own failures, whatever the bytes and however
they are split; a split never changes what is read; a request is accepted only when its framing is
unambiguous (the smuggling shapes: CL+TE, repeated or signed CL, TE other than "chunked", obs-fold,
bare LF, space before the colon, TE on HTTP/1.0), and then its framing is the one the oracle reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshctl.proxy.errors import BadRequest, ProxyFailure
from meshctl.proxy.h1.request import RequestHead, RequestReader
from meshctl.proxy.h1.response import ResponseReader
from meshctl.proxy.h1.response_head import ResponseHead
from tests.reliability.fuzzing import FUZZ, corpus

Event = tuple[Any, ...]


class Recorder:
    """Both sinks: the events in order, adjacent body pieces joined (a split may cut a body anywhere)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def _body(self, data: bytes) -> None:
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + data)
        else:
            self.events.append(("body", data))

    def on_request_head(self, head: RequestHead) -> None:
        self.events.append(("head", head.method, head.target, head.authority, tuple(head.headers), head.chunked,
                            head.content_length, head.keep_alive))  # fmt: skip

    def on_request(self, head: RequestHead) -> None:
        self.on_request_head(head)
        self.on_request_end(None)

    def on_request_body(self, data: bytes) -> None:
        self._body(data)

    def on_request_end(self, trailers: Any) -> None:
        self.events.append(("end", tuple(trailers or ())))

    def on_response_head(self, head: ResponseHead) -> None:
        self.events.append(("head", head.status, tuple(head.headers), head.chunked, head.content_length))

    def on_response_body(self, data: bytes) -> None:
        self._body(data)

    def on_response_end(self, trailers: Any, last: bytes = b"") -> None:
        if last:
            self._body(last)
        self.events.append(("end", tuple(trailers or ())))


def feed_requests(data: bytes, cuts: list[int]) -> tuple[list[Event], type[BaseException] | None]:
    sink = Recorder()
    reader = RequestReader(sink)
    failure: type[BaseException] | None = None
    try:
        for piece in _pieces(data, cuts):
            reader.feed(piece)
    except ProxyFailure as exc:
        failure = type(exc)
        with pytest.raises(ProxyFailure):  # a failed reader stays failed
            reader.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    return sink.events, failure


def feed_responses(data: bytes, cuts: list[int], head_request: bool) -> tuple[list[Event], type[BaseException] | None]:
    sink = Recorder()
    reader = ResponseReader(sink)
    reader.expect(head_request)
    try:
        for piece in _pieces(data, cuts):
            reader.feed(piece)
        reader.eof()
    except ProxyFailure as exc:
        return sink.events, type(exc)
    return sink.events, None


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a] or [data]


# -- byte-level fuzzing: HTTP-shaped noise -------------------------------------------------------------
TOKENS = [b"GET ", b"POST ", b"HEAD ", b"/", b"/x?y", b" HTTP/1.1", b" HTTP/1.0", b"\r\n", b"\n", b"\r", b": ",
          b":", b" ", b"\t", b"Host", b"host: a", b"Content-Length", b"content-length: 5", b"Transfer-Encoding",
          b"transfer-encoding: chunked", b"chunked", b"Connection: close", b"Upgrade: h2c", b"0", b"5", b"-1", b"+",
          b"ffffffffffffffffff", b"abcde", b"\x00", b"\xff", b";ext", b"HTTP/1.1 200 OK", b"HTTP/1.1 100 Continue",
          b"HTTP/1.1 204 No Content", b"Expect: 100-continue"]  # fmt: skip
noise = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=8)), max_size=40).map(b"".join)
cuts = st.lists(st.integers(min_value=0, max_value=4096), max_size=6)


@FUZZ
@given(data=noise, cuts=cuts)
def test_request_reader_raises_only_proxy_failures_and_splits_change_nothing(data: bytes, cuts: list[int]) -> None:
    whole = feed_requests(data, [])
    assert feed_requests(data, cuts) == whole


@FUZZ
@given(data=noise, cuts=cuts, head_request=st.booleans())
def test_response_reader_raises_only_proxy_failures_and_splits_change_nothing(
    data: bytes, cuts: list[int], head_request: bool
) -> None:
    whole = feed_responses(data, [], head_request)
    assert feed_responses(data, cuts, head_request) == whole


@pytest.mark.parametrize("path", corpus("h1-request"), ids=lambda p: p.name)
def test_request_corpus(path: Path) -> None:
    data = path.read_bytes()
    whole = feed_requests(data, [])
    for step in (1, 7):
        assert feed_requests(data, list(range(step, len(data), step))) == whole


@pytest.mark.parametrize("path", corpus("h1-response"), ids=lambda p: p.name)
def test_response_corpus(path: Path) -> None:
    data = path.read_bytes()
    for head_request in (False, True):
        whole = feed_responses(data, [], head_request)
        assert feed_responses(data, list(range(1, len(data))), head_request) == whole


# -- structured fuzzing: smuggling shapes against a strict oracle ------------------------------------------
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control bytes but HTAB: refused in any field value
CL_VALUES = [b"5", b"0", b"05", b"+5", b"-5", b"5 ", b" 5", b"5,5", b"0x5", b"5_0", b"99999999999999999999", b""]
TE_VALUES = [b"chunked", b"Chunked", b" chunked", b"chunked ", b"gzip, chunked", b"chunked, chunked", b"identity",
             b"xchunked", b"chunked\x0b", b""]  # fmt: skip


@st.composite
def framed_request(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """A request whose head may carry smuggling shapes; returns it and what a strict reader must conclude."""
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    fields: list[tuple[bytes, bytes]] = [(b"Host", b"books")]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Transfer-Encoding",
                                     b"transfer-encoding", b"X-Other"]))  # fmt: skip
        value = draw(st.sampled_from(CL_VALUES if b"length" in name.lower() else TE_VALUES))
        fields.insert(draw(st.integers(0, len(fields))), (name, value))
    separator = draw(st.sampled_from([b": ", b": ", b":", b" : ", b":\t"]))
    newline = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    fold = draw(st.booleans()) and draw(st.booleans())
    lines = [b"POST /p HTTP/" + version] + [n + separator + v for n, v in fields]
    if fold:
        lines.append(b" folded")
    body = draw(st.sampled_from([b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"]))
    data = newline.join(lines) + newline + newline + body
    # Leading whitespace is the separator's (OWS); trailing whitespace in a length llhttp refuses, as we want.
    lengths = [v.lstrip(b" \t") for n, v in fields if n.lower() == b"content-length"]
    codings = [v for n, v in fields if n.lower() == b"transfer-encoding"]
    ambiguous = (
        separator == b" : " or newline == b"\n" or fold
        or any(CONTROL.search(v) for _, v in fields)
        or len(lengths) > 1 or any(not v.isdigit() or len(v) > 15 for v in lengths)  # 15 digits: no overflow
        or (lengths and codings) or len(codings) > 1
        or any(v.strip(b" \t").lower() != b"chunked" for v in codings)
        or (codings and version == b"1.0")
    )  # fmt: skip
    expected = {"ambiguous": bool(ambiguous), "chunked": bool(codings),
                "content_length": int(lengths[0]) if lengths and not codings and lengths[0].isdigit() else None}
    return data, expected


@FUZZ
@given(case=framed_request())
def test_no_smuggling_shape_is_accepted(case: tuple[bytes, dict[str, Any]]) -> None:
    data, expected = case
    events, failure = feed_requests(data, [])
    heads = [e for e in events if e[0] == "head"]
    if expected["ambiguous"]:
        assert not heads and failure is not None and issubclass(failure, BadRequest), (data, events)
        return
    assert heads, (data, failure)
    _, _, _, _, _, chunked, content_length, _ = heads[0]
    assert chunked == expected["chunked"] and content_length == expected["content_length"], (data, heads[0])
    assert len(heads) == 1 or failure is None  # a second request only when its own framing held


# -- response heads forwarded in their bytes read as the per-field path reads them -------------------------
FIELD_NAMES = [b"Connection", b"CONNECTION", b"Keep-Alive", b"Proxy-Connection", b"TE", b"Trailer", b"Upgrade",
               b"Content-Length", b"X-Secret", b"x-secret", b"Host", b"A", b"Set-Cookie", b"Close", b"Te-X"]
FIELD_VALUES = [b"keep-alive", b"close", b"X-Secret", b"x-secret, keep-alive", b"Host, Content-Length", b"a",
                b"", b"5", b"0", b"3", b"upgrade, te", b"close, A", b" keep-alive ", b"a:b", b"\tv\t"]  # fmt: skip


@st.composite
def plain_response(draw: st.DrawFn) -> bytes:
    lines = [b"HTTP/%b %d %b" % (draw(st.sampled_from([b"1.1", b"1.0"])),
                                 draw(st.sampled_from([100, 103, 200, 204, 304, 404, 502])),
                                 draw(st.sampled_from([b"OK", b"", b" Two  words "])))]  # fmt: skip
    lines += [name + draw(st.sampled_from([b": ", b":", b":  "])) + value
              for name, value in draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), st.sampled_from(FIELD_VALUES)),
                                               max_size=10))]  # fmt: skip
    return b"\r\n".join(lines) + b"\r\n\r\n" + draw(st.sampled_from([b"", b"abc", b"HTTP/1.1 200 OK\r\n\r\n"]))


def _heads_and_failure(data: bytes, step: int, head_request: bool) -> tuple[list[ResponseHead], str]:
    sink = Recorder()
    heads: list[ResponseHead] = []
    sink.on_response_head = heads.append  # type: ignore[method-assign,assignment]
    reader = ResponseReader(sink)
    reader.expect(head_request)
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
        reader.eof()
    except ProxyFailure as exc:
        return heads, str(exc)
    return heads, ""


@FUZZ
@given(data=plain_response(), head_request=st.booleans())
def test_heads_forwarded_as_read_match_the_per_field_reading(data: bytes, head_request: bool) -> None:
    plain, plain_failure = _heads_and_failure(data, len(data), head_request)
    per_field, failure = _heads_and_failure(data, 1, head_request)  # no head is whole in one read
    assert plain_failure == failure
    assert len(plain) == len(per_field)
    for a, b in zip(plain, per_field, strict=True):
        assert b.raw is None
        assert (a.status, a.reason, a.version, a.keep_alive, a.content_length, a.until_eof, a.no_body, a.headers) \
            == (b.status, b.reason, b.version, b.keep_alive, b.content_length, b.until_eof, b.no_body, b.headers)
        for version in ("1.1", "1.0"):
            for keep_alive in (True, False):
                wire, rechunk, close = a.serialize(version, keep_alive)
                expected = b.serialize(version, keep_alive)
                assert (rechunk, close) == expected[1:]
                # The same fields and framing; a head forwarded as read keeps each line's own spacing.
                assert _fields_of(wire) == _fields_of(expected[0]), (data, wire, expected[0])


def _fields_of(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    start, *lines = head[:-4].split(b"\r\n")
    return start, [(n, v.strip(b" \t")) for n, _, v in (line.partition(b":") for line in lines)]


# -- request heads forwarded in their bytes read as the per-field path reads them ---------------------------
REQUEST_NAMES = [b"Host", b"host", b"HOST", b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection",
                 b"Keep-Alive", b"Proxy-Connection", b"TE", b"Trailer", b"Upgrade", b"mesh-timeout", b"X-Secret",
                 b"A", b"Cookie", b"Te-X", b"Host ", b"Content-Length\t", b""]  # fmt: skip
REQUEST_VALUES = [b"books", b"Books:80", b"", b"5", b"0", b"05", b"5 ", b"+5", b"chunked", b"keep-alive", b"close",
                  b"X-Secret, keep-alive", b"Host, Content-Length", b"a\x00b", b"a\rb", b"a\nb", b"\tv\t", b"250ms",
                  b"caf\xe9"]  # fmt: skip


@st.composite
def plain_requests(draw: st.DrawFn) -> bytes:
    """Pipelined requests that look plain: request lines and fields near what the fast path takes."""
    data = b""
    for _ in range(draw(st.integers(1, 3))):
        line = draw(st.sampled_from([b"GET / HTTP/1.1", b"POST /p?q HTTP/1.1", b"GET  / HTTP/1.1", b"PUT /a#b HTTP/1.1",
                                     b"GET /a\tb HTTP/1.1", b"GET / HTTP/1.0", b"OPTIONS * HTTP/1.1", b"get / HTTP/1.1",
                                     b"PATCH http://books/x HTTP/1.1"]))  # fmt: skip
        fields = [b"Host: books"] if draw(st.booleans()) else []
        for name, value in draw(st.lists(st.tuples(st.sampled_from(REQUEST_NAMES), st.sampled_from(REQUEST_VALUES)),
                                         max_size=6)):  # fmt: skip
            separator = draw(st.sampled_from([b": ", b":", b":  "]))
            fields.insert(draw(st.integers(0, len(fields))), name + separator + value)
        end = draw(st.sampled_from([b"\r\n\r\n", b"\r\n\r\n", b"\r\n\n", b"\n\r\n"]))
        data += b"\r\n".join([line, *fields]) + end + draw(st.sampled_from([b"", b"hello", b"0\r\n\r\n", b"\r\n"]))
    return data


def _read_requests(data: bytes, step: int, plain: bool) -> tuple[list[Event], list[bytes], str]:
    sink = Recorder()
    wires: list[bytes] = []
    record = sink.on_request_head

    def on_head(head: RequestHead) -> None:
        record(head)
        wires.append(head.serialize())

    sink.on_request_head = on_head  # type: ignore[method-assign]
    reader = RequestReader(sink, plain)
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
    except ProxyFailure as exc:
        return sink.events, wires, f"{type(exc).__name__}: {exc}"
    return sink.events, wires, ""


@FUZZ
@given(data=plain_requests(), step=st.sampled_from([0, 0, 1, 7]))
def test_request_heads_forwarded_as_read_match_the_per_field_reading(data: bytes, step: int) -> None:
    events, wires, failure = _read_requests(data, step or len(data), plain=True)
    expected_events, expected, expected_failure = _read_requests(data, len(data), plain=False)
    assert events == expected_events
    if step:  # split reads: the per-field path itself may meet a second fault first (same kind of failure)
        failure, expected_failure = failure.split(":")[0], expected_failure.split(":")[0]
    assert failure == expected_failure
    # The same request line and fields upstream; a head forwarded as read keeps each line's own spacing.
    assert [_fields_of(w) for w in wires] == [_fields_of(w) for w in expected], (data, wires, expected)
