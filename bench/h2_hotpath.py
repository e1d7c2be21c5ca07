"""Micro-benchmark of the HTTP/2 hot path without sockets: what the proxy's Python code costs per request.

    .venv/bin/python -m bench.h2_hotpath [rounds]            # µs, calls, bytecodes per request, both hops
    .venv/bin/python -m bench.h2_hotpath [rounds] --profile  # + the top functions by own time
    .venv/bin/python -m bench.h2_hotpath --callgrind [outbound|inbound]  # instructions per request (slow)

Two arms, the two proxies of `h2load -c8 -m10` through the mesh, each with the real runtime, stack,
metrics, balancer, relay and exchange, and transports that only count bytes:

- outbound: h2load's frames (HEADERS for 10 streams per read) into a DownstreamH2; the requests leave on
  one pooled UpstreamH2 connection to the peer proxy, whose answers (HEADERS + 1 KiB DATA each, all ten
  in one read) come back in;
- inbound: the same frames into the inbound listener; each request leaves on its own pooled HTTP/1.1
  connection to the app (Http1Upstream), which answers nginx's 1 KiB response in one read.

The peers are ngh2 connections driven by the benchmark. Their bytes are recorded once against one proxy
and replayed into a fresh one (the proxy is deterministic: same bytes in, same bytes out, checked), so
what is measured is exactly the proxy's Python work between reads: codec adapter, ends, relay,
exchange, plan, metrics, pool, HTTP/1.1 translation. The kernel's share (read/write/epoll, TLS) and
uvloop's are not in it. µs depend on the machine's load; calls and bytecodes per request do not: they
are the figures to compare across commits.

With --callgrind: instructions per request under `valgrind --tool=callgrind`, two whole processes that
record the same rounds and replay 50 and 150 of them; the difference over 1,000 requests is the replay's
(start-up, imports and the recording cancel). Instructions follow what the CPU does (allocations, hashing,
C calls) where bytecodes do not: a change that saves bytecodes but not instructions is not a saving.

Checked against the real two-hop arm (cProfile in both proxies under `h2load -c8 -m10`, commit 0c245e8):
153 and 162 Python calls per request there against 167 and 164 here, no per-stream task, future or timer,
and 1 and 12 gen-0 collections in 3,800 requests (gc.freeze; 3.11 counts net allocations). What the real
run costs beyond this benchmark's µs is not Python work it misses but the same work run slower (two
proxies, nginx and h2load sharing two cores and their caches) plus the kernel, TLS and uvloop.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ngh2

from bench.bytecodes import BytecodeCounter
from bench.callgrind import instructions
from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.h2.http1 import Http1Pool, Http1Upstream
from meshctl.proxy.h2.pool import H2Pool, UpstreamProtocol, _Endpoint
from meshctl.proxy.h2.server import DownstreamProtocol, _stacks, make_h2_protocol
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.runtime import ProxyRuntime, build_runtime

STREAMS = 10  # requests per client read (h2load -m10)
AUTHORITY = b"nginx-direct.bench.svc.cluster.local:80"
REQUEST = [
    (b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", AUTHORITY),
    (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"), (b"user-agent", b"h2load nghttp2/1.52.0"),
]  # fmt: skip
BODY = b"x" * 1024
# What the inbound proxy answers for nginx (the peer's side of the outbound arm).
PEER_RESPONSE = [
    (b":status", b"200"), (b"server", b"nginx/1.22.1"), (b"date", b"Sun, 29 Nov 2026 08:00:00 GMT"),
    (b"content-type", b"application/octet-stream"), (b"content-length", b"1024"),
    (b"last-modified", b"Sun, 29 Nov 2026 07:00:00 GMT"), (b"etag", b'"6929a8f0-400"'), (b"accept-ranges", b"bytes"),
]  # fmt: skip
APP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n"
    b"Last-Modified: Sun, 29 Nov 2026 07:00:00 GMT\r\n"
    b'Connection: keep-alive\r\nETag: "6929a8f0-400"\r\nAccept-Ranges: bytes\r\n\r\n' + BODY
)
PEER = Endpoint("127.0.0.1", 4143, "nginx.bench.serviceaccount.identity.meshctl.cluster.local", "nginx-0")


class CountingTransport:
    """Takes what the proxy writes; while `keep` is set it also keeps the bytes (for the peers)."""

    def __init__(self, keep: bool) -> None:
        self.written = 0
        self.writes = 0
        self.keep: list[bytes] | None = [] if keep else None

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.written += len(data)
        if self.keep is not None:
            self.keep.append(data)

    def take(self) -> bytes:
        data = b"".join(self.keep or ())
        self.keep = []
        return data

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the benchmark's connections must stay open")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def _runtime(inbound: bool) -> ProxyRuntime:
    side: dict[str, Any] = (
        {"inbound": {"listen": "127.0.0.1:1", "app": "127.0.0.1:8080", "app_protocol": "http"}}
        if inbound
        else {"outbound": {"listen": "127.0.0.1:1"}}
    )
    config = parse_proxy_config({
        "pod": "bench-1", "namespace": "bench", "deployment": "bench", "service_account": "bench",
        "identity": "bench.bench.serviceaccount.identity.meshctl.cluster.local", **side,
        "admin": {"listen": "127.0.0.1:2"}, "control": {"address": "127.0.0.1:3", "identity": "control"},
        "trust_anchors": "/dev/null", "token_file": "/dev/null", "balancer": "ewma", "log_level": "warn",
    })  # fmt: skip
    runtime = build_runtime(config, clock=asyncio.get_running_loop().time)
    snapshot = mesh_pb2.Snapshot(version=1)
    service = snapshot.services.add(name="nginx-direct", namespace="bench", port=80, protocol="http")
    service.endpoints.add(address=PEER.host, port=PEER.port, pod=PEER.pod, identity=PEER.identity, ready=True)
    runtime.on_snapshot(snapshot)
    return runtime


class Arm:
    """One proxy (outbound or inbound) wired to counting transports; `feed(round)` is one read of each peer."""

    def __init__(self, inbound: bool, keep: bool = False) -> None:
        self.inbound = inbound
        runtime = _runtime(inbound)
        direction = "inbound" if inbound else "outbound"
        down = make_h2_protocol(runtime, direction, inbound, "bench.identity" if inbound else None)
        assert isinstance(down, DownstreamProtocol)
        self.down = down
        self.runtime = runtime
        self.client_t = CountingTransport(keep)
        self.down.connection_made(self.client_t)  # type: ignore[arg-type]
        pool = _stacks[runtime][direction].pool
        self.ups: list[Any] = []
        self.up_ts: list[CountingTransport] = []
        if inbound:  # one idle HTTP/1.1 connection per stream in flight, as the pool keeps them
            assert isinstance(pool, Http1Pool)
            app = runtime.config.inbound
            assert app is not None
            key = _stacks[runtime][direction].requests.app  # type: ignore[union-attr]
            for _ in range(STREAMS):
                conn = Http1Upstream(pool, key)
                transport = CountingTransport(keep)
                conn.connection_made(transport)  # type: ignore[arg-type]
                pool.release(conn)
                self.ups.append(conn)
                self.up_ts.append(transport)
        else:  # one pooled connection to the peer proxy, as if dialled
            assert isinstance(pool, H2Pool)
            peer = UpstreamProtocol(pool, PEER)
            peer_t = CountingTransport(keep)
            peer.connection_made(peer_t)  # type: ignore[arg-type]
            entry = pool._endpoints[PEER] = _Endpoint()
            entry.conns.append(peer)
            self.ups.append(peer)
            self.up_ts.append(peer_t)

    def reads(self) -> int:
        """Reads per round: the client's, then one per upstream connection."""
        return 1 + len(self.ups)

    def writes(self) -> int:
        return self.client_t.writes + sum(t.writes for t in self.up_ts)

    def runner(self, rounds: list[tuple[bytes, bytes]]) -> Callable[[int, int], Awaitable[None]]:
        feed_down = self.down.data_received
        ups = [up.data_received for up in self.ups]
        turn = asyncio.sleep

        async def run(start: int, count: int) -> None:
            for client, peer in rounds[start : start + count]:
                feed_down(client)
                await turn(0)  # the loop's next turn: what the proxy deferred to it (its flush) runs
                for feed_up in ups:
                    feed_up(peer)
                await turn(0)

        return run


async def _record(inbound: bool, total: int) -> tuple[list[tuple[bytes, bytes]], int]:
    """Drive one proxy with live ngh2 peers; returns each round's (client bytes, upstream bytes) and what the
    proxy wrote to its client in all (the replay must write exactly as much)."""
    arm = Arm(inbound, keep=True)
    client = ngh2.Connection(ngh2.Role.CLIENT)
    client.initiate_connection()
    client.receive_data(arm.client_t.take())
    server = None
    if not inbound:
        server = ngh2.Connection(ngh2.Role.SERVER)
        server.initiate_connection()
        server.receive_data(arm.up_ts[0].take())
    rounds: list[tuple[bytes, bytes]] = []
    responses = 0
    for _ in range(total):
        for _ in range(STREAMS):
            client.send_request(REQUEST, end_stream=True)
        wire = client.data_to_send()
        arm.down.data_received(wire)
        await asyncio.sleep(0)  # the proxy flushes on the loop's next turn
        if server is None:
            if not all(up.exchanges for up in arm.ups):
                raise SystemExit("not every HTTP/1.1 connection took a request")
            peer = APP_RESPONSE
            for up in arm.ups:
                up.data_received(peer)
            await asyncio.sleep(0)  # the deferred flush towards the client
        else:
            server.receive_data(arm.up_ts[0].take())
            for event in server.events():
                if isinstance(event, ngh2.RequestReceived):
                    server.send_response(event.stream_id, PEER_RESPONSE)
                    server.send_data(event.stream_id, BODY, end_stream=True)
            peer = server.data_to_send()
            arm.ups[0].data_received(peer)
            server.receive_data(arm.up_ts[0].take())  # the proxy's WINDOW_UPDATEs
            server.events()
        client.receive_data(arm.client_t.take())
        for event in client.events():
            responses += isinstance(event, ngh2.DataReceived) and event.end_stream
        rounds.append((wire, peer))
    if responses != total * STREAMS:
        raise SystemExit(f"the path answered {responses} of {total * STREAMS} requests")
    return rounds, arm.client_t.written


async def _bytecodes(run: Callable[[int, int], Awaitable[None]], start: int, count: int) -> int:
    """Python bytecodes the proxy executes: deterministic. The benchmark's loop, its turns of the event loop
    and its transports are not the proxy's work."""
    with BytecodeCounter(skip=(__file__, asyncio.tasks.__file__)) as counted:
        await run(start, count)
    return counted.executed


async def measure(inbound: bool, n: int, profile: bool) -> None:
    warm, calls_n, trace_n = 20, 100, 20
    total = warm + 5 * n + calls_n + trace_n
    rounds, written = await _record(inbound, total)
    arm = Arm(inbound)
    run = arm.runner(rounds)
    at = 0
    await run(at, warm)
    at += warm
    best = float("inf")
    for _ in range(5):
        started = time.thread_time_ns()
        await run(at, n)
        at += n
        best = min(best, (time.thread_time_ns() - started) / (n * STREAMS) / 1000)
    calls = cProfile.Profile()
    calls.enable()
    await run(at, calls_n)
    calls.disable()
    at += calls_n
    stats = pstats.Stats(calls)
    per_request = sum(nc for _, nc, _, _, _ in stats.stats.values()) / (calls_n * STREAMS)  # type: ignore[attr-defined]
    bytecodes = await _bytecodes(run, at, trace_n) / (trace_n * STREAMS)
    at += trace_n
    if arm.client_t.written != written:
        raise SystemExit(f"the replay wrote {arm.client_t.written} B to the client, the recording {written} B")
    name = "inbound (h2 → HTTP/1.1 app)" if inbound else "outbound (h2 → peer proxy)"
    print(f"h2 {name}: {best:.2f} µs/request CPU (best of 5 × {n * STREAMS}), {per_request:.1f} function "
          f"calls/request, {bytecodes:.0f} bytecodes/request, "
          f"{arm.writes() / (total * arm.reads()):.2f} writes/read")  # fmt: skip
    if profile:
        stats.sort_stats("tottime").print_stats(25)


CALLGRIND_RECORDED = 190  # rounds recorded by each measured process: warm-up and the most replayed
CALLGRIND_ROUNDS = (50, 150)


async def replay_only(inbound: bool, n: int) -> None:
    """One process measured under callgrind: the recording, 20 rounds of warm-up, then `n` rounds."""
    rounds, _ = await _record(inbound, CALLGRIND_RECORDED)
    arm = Arm(inbound)
    run = arm.runner(rounds)
    await run(0, 20)
    await run(20, n)


def _instructions(inbound: bool, n: int, out: Path) -> int:
    args = ["--child", "inbound" if inbound else "outbound", str(n)]
    return instructions("bench.h2_hotpath", args, timeout_s=1800, out_file=str(out / "callgrind.out"))


def callgrind(inbound: bool) -> None:
    low, high = CALLGRIND_ROUNDS
    with tempfile.TemporaryDirectory(prefix="h2-hotpath-") as tmp:
        a = _instructions(inbound, low, Path(tmp))
        b = _instructions(inbound, high, Path(tmp))
    name = "inbound" if inbound else "outbound"
    print(f"h2 {name}: {(b - a) / ((high - low) * STREAMS):,.0f} instructions/request "
          f"(callgrind, {low} vs {high} rounds of {STREAMS})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(next((a for a in args if a.isdigit()), "200"))
    profile = "--profile" in args
    arms = [a == "inbound" for a in ("outbound", "inbound") if a in args] or [False, True]
    if "--child" in args:
        import uvloop

        uvloop.run(replay_only(arms[0], n))
        return 0
    if "--callgrind" in args:
        if shutil.which("valgrind") is None:
            print("bench.h2_hotpath: valgrind not found (install it, or run without --callgrind)", file=sys.stderr)
            return 1
        for inbound in arms:
            callgrind(inbound)
        return 0
    try:
        import uvloop  # as deployed: the loop's clock is C, not a Python call per read
    except ImportError:  # pragma: no cover
        uvloop = None  # type: ignore[assignment]
    for inbound in arms:
        if uvloop is not None:
            uvloop.run(measure(inbound, n, profile))
        else:
            asyncio.run(measure(inbound, n, profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
