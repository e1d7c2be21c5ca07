"""Micro-benchmark of the HTTP/1.1 hot path without sockets: what the proxy's Python code costs per request.

    .venv/bin/python -m bench.h1_hotpath [requests]          # µs and Python calls per request
    .venv/bin/python -m bench.h1_hotpath [requests] --profile  # + the top functions by own time
    .venv/bin/python -m bench.h1_hotpath [requests] --inbound  # the inbound listener instead
    .venv/bin/python -m bench.h1_hotpath --callgrind [--inbound]  # machine instructions per request (slow)
    .venv/bin/python -m bench.h1_hotpath [...] --wide          # a browser's head (8 fields, 4 paths in turn)
    .venv/bin/python -m bench.h1_hotpath [...] --new-heads     # no head equal to the one before it, either way

One listener with the real runtime, stack, metrics and balancer (outbound: discovery and balancing;
inbound: a peer proxy's mTLS connection, the local service, the app); one client connection and one
pooled upstream connection whose transports only count bytes. Each request is fed as the socket
would deliver it (wrk's GET, then nginx's 1 KiB response in one read), so what is measured is exactly
the Python work between two reads: codec callbacks, exchange, plan, metrics, pool. A connection reads a
head equal to its last one (and request fields equal to its last ones) as it read them then: wrk repeats
one request, and nginx one head but for its Date, once a second. --new-heads is the other extreme, a
request id in every request and a new Date in every response (as a traced mesh's requests, and an app
that echoes the id, have): the cost of heads never seen. The kernel's share
(read/write/epoll) and uvloop's are not in it — compare it with itself, before and after a change.
µs depend on the machine's load; calls and bytecodes per request (counted by a tracer over a short
run) do not: they are the figures to compare across commits. So are instructions per request: with
--callgrind, two whole processes under `valgrind --tool=callgrind` (uvloop's loop, as deployed; 200
requests of warm-up, then 1,000 or 3,000), their difference over 2,000.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from bench.bytecodes import BytecodeCounter
from bench.callgrind import instructions
from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.h1.downstream import Downstream, Listener
from meshctl.proxy.h1.upstream import Upstream
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.runtime import ProxyRuntime, build_runtime

AUTHORITY = b"nginx-direct.bench.svc.cluster.local:80"
REQUEST = b"GET / HTTP/1.1\r\nHost: " + AUTHORITY + b"\r\n\r\n"
# What a browser or an HTTP library sends: more fields, and a client fetching one resource after another.
WIDE = [
    b"GET /books/%d?page=2 HTTP/1.1\r\nHost: " % i + AUTHORITY + b"\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
    b"Cookie: session=5f2c1e9a7b\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"
    for i in range(4)
]
BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n"
    b"Last-Modified: Sun, 29 Nov 2026 07:00:00 GMT\r\n"
    b'Connection: keep-alive\r\nETag: "6929a8f0-400"\r\nAccept-Ranges: bytes\r\n\r\n' + BODY
)


@dataclass(frozen=True)
class Shape:
    """What the client sends and the upstream answers, request i taking requests[i % len(requests)]."""

    requests: list[bytes]
    responses: list[bytes]

    @classmethod
    def chosen(cls, args: list[str]) -> Shape:
        requests = WIDE if "--wide" in args else [REQUEST]
        if "--new-heads" not in args:
            return cls(requests, [RESPONSE])
        if len(requests) == 1:
            requests = requests * 2
        # each request its own id (a field, so not even its fields repeat); each response another Date
        with_ids = [r[:-2] + b"X-Request-Id: 7c1f%04d\r\n\r\n" % i for i, r in enumerate(requests)]
        return cls(with_ids, [RESPONSE, RESPONSE.replace(b"08:00:00", b"08:00:01")])

    def name(self) -> str:
        wide = ", wide heads" if self.requests[0].startswith(b"GET /books") else ""
        return wide + (", new heads" if len(self.responses) > 1 else "")


class CountingTransport:
    """Takes what the proxy writes; keeps the last write so the run can check the response went out."""

    def __init__(self) -> None:
        self.written = 0
        self.writes = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.written += len(data)
        self.last = data

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("the benchmark's connections must stay open")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


CLIENT_ID = "bench-client.bench.serviceaccount.identity.meshctl.cluster.local"
Arm = tuple[Downstream, Upstream, CountingTransport, CountingTransport]


def _runtime(pod: str, identity: str, listener: dict[str, Any]) -> ProxyRuntime:
    config = parse_proxy_config({
        "pod": pod, "namespace": "bench", "deployment": pod.rsplit("-", 1)[0], "service_account": "bench",
        "identity": identity, **listener, "admin": {"listen": "127.0.0.1:2"},
        "control": {"address": "127.0.0.1:3", "identity": "control"}, "trust_anchors": "/dev/null",
        "token_file": "/dev/null", "balancer": "ewma", "log_level": "warn",
    })  # fmt: skip
    runtime = build_runtime(config, clock=asyncio.get_running_loop().time)
    snapshot = mesh_pb2.Snapshot(version=1)
    service = snapshot.services.add(name="nginx-direct", namespace="bench", port=80, protocol="http")
    service.endpoints.add(address="127.0.0.1", port=8080, pod="nginx-0", identity="", ready=True)
    runtime.on_snapshot(snapshot)
    return runtime


def _connect(listener: Listener, down: Downstream, key: Hashable) -> Arm:
    client = CountingTransport()
    down.connection_made(client)  # type: ignore[arg-type]
    up = Upstream(listener.runtime.metrics, listener.metrics_direction, False, listener.dialer.pool, key)
    server = CountingTransport()
    up.connection_made(server)  # type: ignore[arg-type]
    listener.dialer.pool.put(key, up)
    return down, up, client, server


def _setup() -> Arm:
    """The client's outbound proxy: discovery, balancing, a plaintext endpoint."""
    runtime = _runtime("bench-client-1", CLIENT_ID, {"outbound": {"listen": "127.0.0.1:1"}})
    listener = Listener(runtime, "outbound")
    return _connect(listener, Downstream(listener), Endpoint("127.0.0.1", 8080, "", "nginx-0"))


def _setup_inbound() -> Arm:
    """The server's inbound proxy: a peer proxy's mTLS connection (TLS itself is not in the figure), the
    local service's metrics, the app on loopback."""
    runtime = _runtime("nginx-0", "nginx.bench.serviceaccount.identity.meshctl.cluster.local",
                       {"inbound": {"listen": "127.0.0.1:1", "app": "127.0.0.1:8080"}})  # fmt: skip
    listener = Listener(runtime, "inbound")
    return _connect(listener, Downstream(listener, tls=True, peer_identity=CLIENT_ID), ("127.0.0.1", 8080))


def _run(down: Downstream, up: Upstream, n: int, shape: Shape) -> None:
    feed_request, feed_response = down.data_received, up.data_received
    requests, responses = shape.requests, shape.responses
    if len(requests) == 1 and len(responses) == 1:
        request, response = requests[0], responses[0]
        for _ in range(n):
            feed_request(request)
            feed_response(response)
        return
    for i in range(n):
        feed_request(requests[i % len(requests)])
        feed_response(responses[i % len(responses)])


def _bytecodes(down: Downstream, up: Upstream, n: int, shape: Shape) -> float:
    """Python bytecodes the proxy executes per request: deterministic. With the default asyncio loop,
    loop.time() is Python and counted; under uvloop, as deployed, it is C."""
    with BytecodeCounter(skip=(__file__,)) as counted:  # the benchmark's loop and transports are not the proxy's
        _run(down, up, n, shape)
    return counted.executed / n


async def measure(n: int, profile: bool, inbound: bool, shape: Shape) -> None:
    down, up, client, server = _setup_inbound() if inbound else _setup()
    _run(down, up, 200, shape)  # warm-up: series, balancer state and pool exist
    if client.writes != 200 or not client.last.endswith(BODY) or server.writes != 200:
        raise SystemExit(f"the path did not answer every request ({client.writes} responses, {server.writes} sent)")
    best = float("inf")
    for _ in range(5):
        started = time.thread_time_ns()
        _run(down, up, n, shape)
        best = min(best, (time.thread_time_ns() - started) / n / 1000)
    calls = cProfile.Profile()
    calls.enable()
    _run(down, up, 1000, shape)
    calls.disable()
    stats = pstats.Stats(calls)
    per_request = sum(nc for _, nc, _, _, _ in stats.stats.values()) / 1000  # type: ignore[attr-defined]
    bytecodes = _bytecodes(down, up, 500, shape)
    side = ("inbound" if inbound else "outbound") + shape.name()
    print(f"h1 hot path ({side}): {best:.2f} µs/request CPU (best of 5 × {n}), {per_request:.1f} calls/request, "
          f"{bytecodes:.0f} bytecodes/request, "
          f"{client.written / client.writes:.0f} B per response write, "
          f"{(client.writes + server.writes) / (n * 5 + 1700):.2f} writes/request")  # fmt: skip
    if profile:
        stats.sort_stats("tottime").print_stats(25)


async def _child(n: int, inbound: bool, shape: Shape) -> None:
    """One process under callgrind: warm-up, then `n` requests, nothing else."""
    down, up, _, _ = _setup_inbound() if inbound else _setup()
    _run(down, up, 200, shape)
    _run(down, up, n, shape)


def _instructions(n: int, args: list[str]) -> int:
    flags = [flag for flag in ("--inbound", "--wide", "--new-heads") if flag in args]
    return instructions("bench.h1_hotpath", ["--child", str(n), *flags], timeout_s=900)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(next((a for a in args if a.isdigit()), "20000"))
    inbound = "--inbound" in args
    shape = Shape.chosen(args)
    if "--child" in args:
        import uvloop

        uvloop.run(_child(n, inbound, shape))
        return 0
    if "--callgrind" in args:
        low, high = _instructions(1000, args), _instructions(3000, args)
        side = ("inbound" if inbound else "outbound") + shape.name()
        print(f"h1 hot path ({side}): {(high - low) / 2000:,.0f} instructions/request (callgrind, 1,000 vs 3,000)")
        return 0
    asyncio.run(measure(n, "--profile" in args, inbound, shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
