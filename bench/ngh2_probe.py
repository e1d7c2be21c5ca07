"""python-h2 and ngh2 side by side at the codec level: `python -m bench.ngh2_probe [--exchanges N]`.

Not a benchmark of the proxy: both codecs run in memory, in one process and one run, so the ratio is
what the codec alone changes. ngh2 is the proxy's codec; python-h2 (from the dev extra: the tests use it
as an independent peer) is configured as the proxy ran it until ngh2 replaced it (its settings, header
validation off; without the core's guards in h2/ends.py, which sit above the codec either way); ngh2
runs with its default Configuration.

1. Speed: one client/server connection pair in memory; per exchange a GET (HEADERS with END_STREAM)
   and a 200 response with a 1 KiB body, every byte passed through both codecs. Then the same exchange
   through the proxy's own ends (h2/ends.py, on ngh2), with the Python and C calls it makes counted
   (sys.setprofile). The same through python-h2 was 595 Python calls and ~480 µs (bench/results/NGH2.md).
2. Abuse: the same attack bytes (built with hyperframe, codec-neutral) fed to each server: rapid reset,
   SETTINGS flood, PING flood, CONTINUATION flood, HPACK bomb. Reported: what the codec did (an error,
   a GOAWAY queued, or nothing), the events it produced, the bytes it queued to send, the CPU it took.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"bench")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/octet-stream"), (b"content-length", b"1024")]
BODY = b"x" * 1024
FLOOD = 10_000  # frames per attack


def _ngh2() -> Any:
    return importlib.import_module("ngh2")


# --- speed ------------------------------------------------------------------------------------------


def h2_connection(client_side: bool) -> Any:
    """python-h2 with the settings the proxy gave it (h2/conn.py's H2Limits), its preface queued."""
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.settings import SettingCodes, Settings

    from meshctl.proxy.h2.conn import H2Limits

    limits = H2Limits()
    config = H2Configuration(client_side=client_side, header_encoding=None, validate_inbound_headers=False,
                             normalize_inbound_headers=False, validate_outbound_headers=False,
                             normalize_outbound_headers=False)  # fmt: skip
    conn = H2Connection(config)
    conn.local_settings = Settings(
        client=client_side,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
            SettingCodes.ENABLE_PUSH: 0,
        },
    )
    conn.initiate_connection()
    conn.increment_flow_control_window(limits.connection_window - 65535)
    return conn


def exchange_h2(count: int) -> float:
    """µs per exchange with python-h2 (configured as the proxy had it, on both sides)."""
    from h2.events import DataReceived, RequestReceived

    client, server = h2_connection(True), h2_connection(False)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    start = time.process_time()
    for _ in range(count):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, REQUEST, end_stream=True)
        for event in server.receive_data(client.data_to_send()):
            if isinstance(event, RequestReceived):
                server.send_headers(event.stream_id, RESPONSE)
                server.send_data(event.stream_id, BODY, end_stream=True)
        for event in client.receive_data(server.data_to_send()):
            if isinstance(event, DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        server.receive_data(client.data_to_send())
    return (time.process_time() - start) / count * 1e6


def exchange_ngh2(count: int) -> float:
    """µs per exchange with ngh2 (automatic WINDOW_UPDATEs, its default)."""
    ngh2 = _ngh2()
    client, server = ngh2.Connection(ngh2.Role.CLIENT), ngh2.Connection(ngh2.Role.SERVER)
    client.initiate_connection()
    server.initiate_connection()
    for _ in range(2):
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    server.events(), client.events()
    request_received = ngh2.RequestReceived
    start = time.process_time()
    for _ in range(count):
        client.send_request(REQUEST, end_stream=True)
        server.receive_data(client.data_to_send())
        for event in server.events():
            if isinstance(event, request_received):
                server.send_response(event.stream_id, RESPONSE)
                server.send_data(event.stream_id, BODY, end_stream=True)
        client.receive_data(server.data_to_send())
        client.events()
        server.receive_data(client.data_to_send())
        server.events()
    return (time.process_time() - start) / count * 1e6


def exchange_core(count: int) -> tuple[float, float, float]:
    """The proxy's own ends, client (UpstreamH2) and server (DownstreamH2), in memory.

    Returns (µs per exchange, Python function calls per exchange, C calls per exchange): the codec
    with the core's bookkeeping and guards on top, as the proxy runs it (without sockets and routing).
    """
    from meshctl.proxy.h2.core import Outbox
    from meshctl.proxy.h2.ends import DownstreamH2, UpstreamH2
    from meshctl.proxy.h2.events import Body, Request

    client, server = UpstreamH2(Outbox()), DownstreamH2(Outbox())
    server.receive(client.output())
    client.receive(server.output())
    server.receive(client.output())
    client.receive(server.output())

    def one() -> None:
        sid = client.start(REQUEST, end_stream=True)
        assert sid is not None
        for event in server.receive(client.output()):
            if type(event) is Request:
                server.send_headers(event.stream_id, RESPONSE)
                server.send_data(event.stream_id, BODY, end_stream=True)
        for event in client.receive(server.output()):
            if type(event) is Body:
                client.ack(event.stream_id, len(event.data))
        server.receive(client.output())

    calls = {"call": 0, "c_call": 0}

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event in calls:
            calls[event] += 1

    for _ in range(10):  # warm: HPACK tables filled, windows settled
        one()
    sys.setprofile(profile)
    for _ in range(100):
        one()
    sys.setprofile(None)
    start = time.process_time()
    for _ in range(count):
        one()
    return (time.process_time() - start) / count * 1e6, calls["call"] / 100, calls["c_call"] / 100


# --- abuse ------------------------------------------------------------------------------------------


def _frames(frames: list[Frame]) -> bytes:
    return b"".join(f.serialize() for f in frames)


def _block(headers: list[tuple[bytes, bytes]]) -> bytes:
    return Encoder().encode(headers)


def rapid_reset() -> bytes:
    out = []
    block = _block(REQUEST)
    for i in range(FLOOD):
        sid = 2 * i + 1
        out += [HeadersFrame(sid, block, flags=["END_HEADERS", "END_STREAM"]), RstStreamFrame(sid, error_code=8)]
    return _frames(out)


def settings_flood() -> bytes:
    return _frames([SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535}) for _ in range(FLOOD)])


def ping_flood() -> bytes:
    return _frames([PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(FLOOD)])


def continuation_flood() -> bytes:
    # Each fragment adds a literal header field without indexing; the block never ends.
    fragment = b"\x00\x01a\x40" + b"b" * 64
    frames: list[Frame] = [HeadersFrame(1, _block(REQUEST))]
    frames += [ContinuationFrame(1, fragment) for _ in range(FLOOD)]
    return _frames(frames)


def hpack_bomb() -> bytes:
    # One 4 KiB field goes into the dynamic table; each later request references it 2,000 times (8 MiB).
    encoder = Encoder()
    first = encoder.encode([*REQUEST, (b"x-bomb", b"b" * 4000)])
    index = bytes([0x80 | 62])  # indexed field: the newest dynamic-table entry
    frames: list[Frame] = [HeadersFrame(1, first, flags=["END_HEADERS", "END_STREAM"])]
    for i in range(1, 50):
        frames.append(HeadersFrame(2 * i + 1, _block(REQUEST) + index * 2000, flags=["END_HEADERS", "END_STREAM"]))
    return _frames(frames)


ATTACKS: dict[str, Callable[[], bytes]] = {
    "rapid reset (10,000 HEADERS + RST_STREAM)": rapid_reset,
    "SETTINGS flood (10,000, ACKs never read)": settings_flood,
    "PING flood (10,000, ACKs never read)": ping_flood,
    "CONTINUATION flood (10,000 after one HEADERS)": continuation_flood,
    "HPACK bomb (4 KiB entry referenced 2,000 × per request, 49 requests)": hpack_bomb,
}


_FRAME_NAMES = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM", 4: "SETTINGS", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE"}


def queued_frames(out: bytes) -> str:
    """What a codec queued to send, e.g. "RST_STREAM ×48, GOAWAY(11)" (a GOAWAY with its error code)."""
    counts: dict[str, int] = {}
    at = 0
    while at + 9 <= len(out):
        length, kind = int.from_bytes(out[at : at + 3], "big"), out[at + 3]
        name = _FRAME_NAMES.get(kind, f"type {kind}")
        if kind == 7 and at + 17 <= len(out):
            name = f"GOAWAY({int.from_bytes(out[at + 13 : at + 17], 'big')})"
        counts[name] = counts.get(name, 0) + 1
        at += 9 + length
    return ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in counts.items()) or "nothing"


def _client_preface() -> bytes:
    return PREFACE + _frames([SettingsFrame(0)])


def attack_h2(attack: bytes) -> dict[str, Any]:
    from h2.exceptions import H2Error

    server = h2_connection(False)
    server.receive_data(_client_preface())
    server.data_to_send()
    start, events, outcome = time.process_time(), 0, "accepted everything"
    try:
        for at in range(0, len(attack), 16_384):  # reads of a socket's size
            events += len(server.receive_data(attack[at : at + 16_384]))
    except H2Error as exc:
        outcome = f"{exc.__class__.__name__}: {str(exc)[:80]}"
    cpu = time.process_time() - start
    out = server.data_to_send()
    return {"outcome": outcome, "sent": queued_frames(out), "events": events, "cpu_ms": cpu * 1e3}


def attack_ngh2(attack: bytes) -> dict[str, Any]:
    ngh2 = _ngh2()
    server = ngh2.Connection(ngh2.Role.SERVER)
    server.initiate_connection()
    server.receive_data(_client_preface())
    server.events()
    server.data_to_send()
    start, events, outcome = time.process_time(), 0, "accepted everything"
    try:
        for at in range(0, len(attack), 16_384):
            server.receive_data(attack[at : at + 16_384])
            events += len(server.events())
    except ngh2.NGH2Error as exc:
        outcome = f"{exc.__class__.__name__}: {str(exc)[:80]}"
    cpu = time.process_time() - start
    try:
        sent = queued_frames(server.data_to_send())
    except ngh2.NGH2Error as exc:
        sent = f"data_to_send raised {exc.__class__.__name__}"
    return {"outcome": outcome, "sent": sent, "events": events, "cpu_ms": cpu * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ngh2_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--exchanges", type=int, default=2000, help="request/response exchanges per codec")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    try:
        ngh2 = _ngh2()
    except ImportError:
        print("ngh2 is not installed: run `bash .ci/setup` (it is pinned in pyproject.toml)", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"ngh2_version": getattr(ngh2, "__version__", "?")}
    h2_us, ngh2_us = exchange_h2(args.exchanges), exchange_ngh2(args.exchanges)
    results["exchange_us"] = {"h2": h2_us, "ngh2": ngh2_us, "ratio": h2_us / ngh2_us}
    us, py_calls, c_calls = exchange_core(args.exchanges)
    results["core"] = {"us": us, "python_calls": py_calls, "c_calls": c_calls}
    results["attacks"] = {}
    for name, build in ATTACKS.items():
        attack = build()
        results["attacks"][name] = {"bytes": len(attack), "h2": attack_h2(attack), "ngh2": attack_ngh2(attack)}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    ex = results["exchange_us"]
    print(f"ngh2 {results['ngh2_version']}; one GET + 1 KiB response in memory, {args.exchanges} exchanges")
    print(f"  h2 {ex['h2']:.1f} µs, ngh2 {ex['ngh2']:.1f} µs per exchange: ngh2 {ex['ratio']:.1f} × faster")
    c = results["core"]
    print("through the proxy's ends (UpstreamH2 ↔ DownstreamH2, ngh2), per exchange:")
    print(f"  {c['us']:.1f} µs, {c['python_calls']:.0f} Python calls, {c['c_calls']:.0f} C calls")
    for name, res in results["attacks"].items():
        print(f"{name} ({res['bytes']:,} bytes)")
        for codec in ("h2", "ngh2"):
            r = res[codec]
            print(f"  {codec:5} {r['outcome']}; {r['events']} events; queued {r['sent']}; {r['cpu_ms']:.1f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
