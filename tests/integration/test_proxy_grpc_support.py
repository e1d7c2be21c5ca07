"""Harness for the gRPC proxy tests: proxy runtimes fed a static snapshot and mesh certificates, a backend.

`Mesh` runs an outbound proxy (the client's sidecar) and an inbound proxy (the server's sidecar) with
mTLS between them on one uvloop thread, with the proxy's own listeners: protocol detection hands each
HTTP/2 connection (preface, or ALPN h2) to `make_h2_protocol`.
`python -m tests.integration.test_proxy_grpc_support bench` measures calls/s and messages/s through two
proxies (each its own process) against a direct channel.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import uvloop

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from meshctl.metrics.registry import RouteStats
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.control_client import IssuedCertificate
from meshctl.proxy.main import Proxy
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from tests.fakes.mesh_pki import MeshPki
from tests.ports import free_port

T = TypeVar("T")
NS = "grpcapp"
SERVICE = "test.Echo"
ECHO_ID = workload_identity("echo", NS)
CLIENT_ID = workload_identity("client", NS)
AUTHORITY = f"echo.{NS}.svc.cluster.local:7000"


def snapshot(inbound_port: int, identity: str = ECHO_ID, profile: dict[str, Any] | None = None) -> mesh_pb2.Snapshot:
    """The echo service (gRPC, port 7000) with one endpoint: the inbound proxy in front of the app."""
    endpoint = mesh_pb2.Endpoint(address="127.0.0.1", port=inbound_port, identity=identity, pod="echo-0", ready=True)
    service = mesh_pb2.Service(name="echo", namespace=NS, port=7000, protocol="grpc", endpoints=[endpoint])
    resources = []
    if profile is not None:
        resources.append(
            mesh_pb2.Resource(
                api_version="meshctl.io/v1alpha1", kind="ServiceProfile", name=f"echo.{NS}.svc.cluster.local",
                namespace=NS, spec_json=json.dumps(profile),
            )
        )  # fmt: skip
    return mesh_pb2.Snapshot(version=1, services=[service], resources=resources)


def runtime(pod: str, identity: str, cert: IssuedCertificate, *, inbound: tuple[int, int, str] | None = None,
            outbound: int | None = None) -> ProxyRuntime:  # fmt: skip
    """A runtime as the control plane would leave it: config, certificate, snapshot (set later)."""
    doc: dict[str, Any] = {
        "pod": pod, "namespace": NS, "identity": identity,
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "control": {"address": "127.0.0.1:1", "identity": "unused"},
        "trust_anchors": "unused", "token_file": "unused", "balancer": "ewma",
    }  # fmt: skip
    if inbound is not None:
        listen, app, protocol = inbound
        doc["inbound"] = {"listen": f"127.0.0.1:{listen}", "app": f"127.0.0.1:{app}", "app_protocol": protocol}
    if outbound is not None:
        doc["outbound"] = {"listen": f"127.0.0.1:{outbound}"}
    rt = build_runtime(parse_proxy_config(doc))
    rt.on_certificate(cert)
    return rt


# A gRPC server in its own process that streams forever and prints its port: the tests kill it mid-stream.
BACKEND_SCRIPT = """
import sys, time
from concurrent import futures
import grpc
same = lambda b: b
def forever(request, context):
    n = 0
    while True:
        yield b"%d" % n
        n += 1
        time.sleep(0.01)
server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "test.Echo", {"Forever": grpc.unary_stream_rpc_method_handler(forever, same, same)}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
"""


def _same(data: bytes) -> bytes:
    return data


class Backend:
    """A grpcio server with generic handlers: every call shape, an application error, a slow call."""

    def __init__(self, port: int = 0) -> None:
        self.cancelled = threading.Event()
        self.timeouts: list[float | None] = []
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary, _same, _same),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail, _same, _same),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow, _same, _same),
            "Nap": grpc.unary_unary_rpc_method_handler(self.nap, _same, _same),
            "Count": grpc.unary_stream_rpc_method_handler(self.count, _same, _same),
            "Sum": grpc.stream_unary_rpc_method_handler(self.sum, _same, _same),
            "Echo": grpc.stream_stream_rpc_method_handler(self.echo, _same, _same),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata((("x-trailer", "t1"),))
        return request[::-1]

    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nope: " + request.decode())

    def slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.timeouts.append(context.time_remaining())
        context.add_callback(self.cancelled.set)
        for _ in range(100):
            if not context.is_active():
                break
            time.sleep(0.05)
        return b"late"

    def nap(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        time.sleep(0.1)
        return request

    def count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for n in range(int(request)):
            yield b"%d" % n

    def sum(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"%d" % sum(int(r) for r in requests)

    def echo(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for r in requests:
            yield b"echo:" + r

    def stop(self) -> None:
        self.server.stop(0).wait(5)


class Mesh:
    """Outbound proxy -> (mTLS, ALPN h2) -> inbound proxy -> app, on one uvloop thread."""

    def __init__(self, app_port: int, *, app_protocol: str = "grpc", peer_identity: str = ECHO_ID,
                 profile: dict[str, Any] | None = None) -> None:  # fmt: skip
        pki = MeshPki()
        self.inbound_port, self.outbound_port = free_port(), free_port()
        self.inbound = runtime(
            "echo-0", ECHO_ID, pki.issue(ECHO_ID), inbound=(self.inbound_port, app_port, app_protocol)
        )
        self.outbound = runtime("client-0", CLIENT_ID, pki.issue(CLIENT_ID), outbound=self.outbound_port)
        self.inbound.on_snapshot(snapshot(self.inbound_port, profile=profile))
        self.outbound.on_snapshot(snapshot(self.inbound_port, peer_identity, profile))
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxies: list[Proxy] = self.run(self._listen())

    async def _listen(self) -> list[Proxy]:
        """The proxies' own listeners: protocol detection hands HTTP/2 to make_h2_protocol."""
        proxies = [Proxy(rt.config, rt) for rt in (self.inbound, self.outbound)]
        for proxy in proxies:
            await proxy.start_listeners()
        return proxies

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return fn()

        return self.run(on_loop())

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            f"127.0.0.1:{self.outbound_port}",
            options=[("grpc.default_authority", AUTHORITY), ("grpc.enable_retries", 0)],
        )

    def stats(self, side: str, route: str = "[DEFAULT]") -> RouteStats:
        rt = self.outbound if side == "outbound" else self.inbound
        return self.call(lambda: rt.metrics.route(side, AUTHORITY, route, True, NS, "echo"))

    def responses(self, side: str, route: str = "[DEFAULT]") -> dict[tuple[int, int | None, bool], int]:
        stats = self.stats(side, route)
        return self.call(lambda: {key: series.count for key, series in stats.responses.items()})

    def render(self, side: str) -> str:
        rt = self.outbound if side == "outbound" else self.inbound
        return self.call(lambda: rt.metrics.render().decode())

    def stop(self) -> None:
        async def close() -> None:
            await asyncio.gather(*(proxy.stop() for proxy in self.proxies))

        self.run(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# -- benchmark: python -m tests.integration.test_proxy_grpc_support bench ---------------------------------
def _write_certificate(path: Path, cert: IssuedCertificate) -> None:
    parts = {"key": cert.key_pem, "chain": cert.cert_chain_pem, "anchors": cert.trust_anchors_pem}
    path.write_text(json.dumps({k: v.decode() for k, v in parts.items()} | {"identity": cert.identity,
                                "not_after": cert.not_after.isoformat()}))  # fmt: skip


def _read_certificate(path: Path) -> IssuedCertificate:
    doc = json.loads(path.read_text())
    return IssuedCertificate(doc["key"].encode(), doc["chain"].encode(), doc["anchors"].encode(), doc["identity"],
                             datetime.fromisoformat(doc["not_after"]))  # fmt: skip


def _serve_proxy(role: str, pki_dir: Path, listen: int, target: int) -> None:
    """One proxy in this process until SIGTERM: inbound (mTLS -> app at `target`) or outbound."""
    cert = _read_certificate(pki_dir / f"{role}.json")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if role == "inbound":
            rt = runtime("echo-0", ECHO_ID, cert, inbound=(listen, target, "grpc"))
            rt.on_snapshot(snapshot(listen))
        else:
            rt = runtime("client-0", CLIENT_ID, cert, outbound=listen)
            rt.on_snapshot(snapshot(target))
        proxy = Proxy(rt.config, rt)
        await proxy.start_listeners()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await proxy.stop()

    uvloop.run(main())


def _serve_backend() -> None:
    backend = Backend()
    print(backend.port, flush=True)
    signal.sigwait({signal.SIGTERM})
    backend.stop()


def _measure(target: str, authority: str | None) -> dict[str, float]:
    options: list[tuple[str, Any]] = [("grpc.enable_retries", 0)]
    if authority:
        options.append(("grpc.default_authority", authority))
    results: dict[str, float] = {}
    with grpc.insecure_channel(target, options=options) as ch:
        unary = ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)
        count = ch.unary_stream(f"/{SERVICE}/Count", _same, _same)
        echo = ch.stream_stream(f"/{SERVICE}/Echo", _same, _same)
        for _ in range(200):  # warm-up
            unary(b"x" * 100, timeout=10)
        started = time.perf_counter()
        for _ in range(3000):
            unary(b"x" * 100, timeout=10)
        results["unary sequential calls/s"] = 3000 / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(100):
            pending = [unary.future(b"y" * 100, timeout=10) for _ in range(64)]
            for call in pending:
                call.result()
        results["unary 64 in flight calls/s"] = 6400 / (time.perf_counter() - started)
        started = time.perf_counter()
        received = sum(1 for _ in count(b"50000", timeout=60))
        results["server-streaming msgs/s"] = received / (time.perf_counter() - started)
        started = time.perf_counter()
        echoed = sum(1 for _ in echo(iter([b"z" * 100] * 20000), timeout=60))
        results["bidi-streaming msgs/s"] = echoed / (time.perf_counter() - started)
    return results


def bench() -> None:
    """Direct vs through two proxies (each its own process, mTLS between them), same backend."""
    with tempfile.TemporaryDirectory() as tmp:
        pki_dir, pki = Path(tmp), MeshPki()
        _write_certificate(pki_dir / "inbound.json", pki.issue(ECHO_ID))
        _write_certificate(pki_dir / "outbound.json", pki.issue(CLIENT_ID))
        me = [sys.executable, "-m", "tests.integration.test_proxy_grpc_support"]
        procs: list[subprocess.Popen[str]] = []
        try:
            backend = subprocess.Popen([*me, "backend"], stdout=subprocess.PIPE, text=True)
            procs.append(backend)
            assert backend.stdout is not None
            app_port = int(backend.stdout.readline())
            inbound_port, outbound_port = free_port(), free_port()
            for role, listen, target in (
                ("inbound", inbound_port, app_port),
                ("outbound", outbound_port, inbound_port),
            ):
                proc = subprocess.Popen(
                    [*me, "proxy", role, tmp, str(listen), str(target)], stdout=subprocess.PIPE, text=True
                )
                procs.append(proc)
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            direct = _measure(f"127.0.0.1:{app_port}", None)
            proxied = _measure(f"127.0.0.1:{outbound_port}", AUTHORITY)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if proc.stdout is not None:
                    proc.stdout.close()
    print(f"{'':28} {'direct':>10} {'2 proxies':>10} {'ratio':>6}")
    for name, value in direct.items():
        print(f"{name:28} {value:10.0f} {proxied[name]:10.0f} {proxied[name] / value:6.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["proxy"]:
        _serve_proxy(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1:2] == ["backend"]:
        _serve_backend()
    else:
        bench()
