"""Simulated proxies for `bench.control_scale`: N clients of the real control-plane API in one process.

Each simulated proxy does what a real one does on the wire (meshctl.proxy.control_client): its own TLS
connection with ALPN h2 to the control plane, verified against the mesh's anchors, spoken through the
proxy's own HTTP/2 gRPC client (meshctl.proxy.grpc_client, the same codec and window settings); one
Discovery.Watch stream carrying its workload token; a keepalive PING every 10 s. Certify calls (on
command) go over the same connections with CSRs made before the timed part.

With "delta": true in the spec the proxies ask for deltas (WatchRequest.accept_delta), as real proxies
do: every message is decoded and a delta must follow the version the proxy holds (or the run fails).
Without it every message is a complete snapshot, of which only the version is read.

What a simulated proxy skips is local work that a real proxy does on its own core: it does not merge
deltas into a snapshot nor decode complete snapshots it is sent, and does not verify the certificate.

Protocol with the driver: one JSON object per line. Commands on stdin: {"cmd": "certify", "count": C,
"in_flight": K} and {"cmd": "quit"}. Events on stdout: "ready" once every proxy has its first snapshot,
"version" with every proxy's receipt time (wall clock) and the largest message once all N have a
snapshot version, "certified" with the timing of a certify burst, "error" when the clients cannot go on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.proxy.control_client import CERTIFY, KEEPALIVE_S, KEEPALIVE_TIMEOUT_S, WATCH
from meshctl.proxy.grpc_client import GrpcConnection, GrpcError

CONNECT_TIMEOUT_S = 30.0  # per connection; a thousand handshakes queue up on a busy control plane
CONNECT_IN_FLIGHT = 64  # handshakes at once: proxies of a real mesh do not all start in the same ms
CERTIFY_TIMEOUT_S = 30.0


def snapshot_version(message: bytes) -> int:
    """The `version` of a serialised Snapshot without decoding the rest (field 1 comes first)."""
    if message[:1] != b"\x08":  # not deterministic order or version 0: decode the whole message
        return int(mesh_pb2.Snapshot.FromString(message).version)
    value, shift = 0, 0
    for byte in message[1:11]:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
    raise ValueError("truncated varint in the snapshot's version")


@dataclass
class Proxy:
    pod: str
    identity: str
    token: bytes
    csr_der: bytes
    conn: GrpcConnection | None = None
    version: int = 0  # the snapshot version it holds


@dataclass
class Receipts:
    """Receipt time of each snapshot version by each proxy; a version is reported once all N have it."""

    expected: int
    times: dict[int, list[float]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # the largest message that brought each version
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def received(self, version: int, at: float, size: int) -> None:
        got = self.times.setdefault(version, [])
        got.append(at)
        self.sizes[version] = max(size, self.sizes.get(version, 0))
        if len(got) == self.expected:
            if not self.ready.is_set():
                self.ready.set()
                emit({"event": "ready", "version": version, "at": at})
            else:
                emit({"event": "version", "version": version, "times": got, "bytes": self.sizes[version]})
            del self.times[version], self.sizes[version]


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _ssl_context(anchors: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(anchors))
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def _connect(proxy: Proxy, spec: dict[str, Any], ctx: ssl.SSLContext, gate: asyncio.Semaphore) -> None:
    host, _, port = spec["address"].rpartition(":")
    loop = asyncio.get_running_loop()
    async with gate:
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: GrpcConnection(spec["server_identity"]), host, int(port), ssl=ctx,
                                   server_hostname=spec["server_identity"], ssl_handshake_timeout=CONNECT_TIMEOUT_S),
            CONNECT_TIMEOUT_S,
        )  # fmt: skip
    proxy.conn = conn


def delta_version(proxy: Proxy, message: bytes) -> int:
    """The version a message brings a proxy that merges deltas; ValueError for a delta from another base."""
    snapshot = mesh_pb2.Snapshot.FromString(message)
    if snapshot.delta and snapshot.base_version != proxy.version:
        raise ValueError(f"{proxy.pod}: a delta from version {snapshot.base_version} to a proxy at {proxy.version}")
    return int(snapshot.version)


async def _watch(proxy: Proxy, receipts: Receipts, delta: bool) -> None:
    assert proxy.conn is not None
    request = mesh_pb2.WatchRequest(proxy_id=proxy.pod, identity=proxy.identity, namespace="scale",
                                    proxy_version="bench", token=proxy.token, accept_delta=delta)  # fmt: skip
    call = proxy.conn.call(WATCH, request.SerializeToString())
    while (message := await call.next()) is not None:
        proxy.version = delta_version(proxy, message) if delta else snapshot_version(message)
        receipts.received(proxy.version, time.time(), len(message))
    raise GrpcError(14, f"{proxy.pod}: the Watch stream ended")


async def _keepalive(proxy: Proxy) -> None:
    conn = proxy.conn
    assert conn is not None
    while not conn.closed.done():
        await asyncio.sleep(KEEPALIVE_S)
        if not await conn.ping(KEEPALIVE_TIMEOUT_S):
            raise GrpcError(14, f"{proxy.pod}: the control plane stopped answering PINGs")


async def certify(proxies: list[Proxy], count: int, in_flight: int) -> dict[str, Any]:
    """`count` Certify calls spread over the proxies' connections, at most `in_flight` at once."""
    gate = asyncio.Semaphore(in_flight)
    errors: list[str] = []

    async def one(i: int) -> None:
        proxy = proxies[i % len(proxies)]
        assert proxy.conn is not None
        request = mesh_pb2.CertifyRequest(identity=proxy.identity, token=proxy.token, csr_der=proxy.csr_der)
        async with gate:
            try:
                reply = await proxy.conn.call(CERTIFY, request.SerializeToString(), CERTIFY_TIMEOUT_S).unary()
                if not mesh_pb2.CertifyResponse.FromString(reply).leaf_der:
                    errors.append("an empty certificate")
            except GrpcError as exc:
                errors.append(str(exc))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return {"event": "certified", "count": count, "seconds": time.perf_counter() - start,
            "errors": len(errors), "first_error": errors[0] if errors else None}  # fmt: skip


async def _commands(proxies: list[Proxy]) -> None:
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        if command["cmd"] == "quit":
            return
        if command["cmd"] == "certify":
            emit(await certify(proxies, int(command["count"]), int(command["in_flight"])))


async def run(spec: dict[str, Any]) -> None:
    proxies = [
        Proxy(p["pod"], p["identity"], p["token"].encode(), base64.b64decode(p["csr_der"])) for p in spec["proxies"]
    ]
    ctx = _ssl_context(Path(spec["anchors"]))
    receipts = Receipts(len(proxies))
    gate = asyncio.Semaphore(CONNECT_IN_FLIGHT)
    start = time.perf_counter()
    await asyncio.gather(*(_connect(p, spec, ctx, gate) for p in proxies))
    emit({"event": "connected", "count": len(proxies), "seconds": time.perf_counter() - start})
    # One task per stream and per keepalive, as a real proxy has; the first failure ends the run.
    tasks = [asyncio.ensure_future(_watch(p, receipts, bool(spec.get("delta")))) for p in proxies]
    tasks += [asyncio.ensure_future(_keepalive(p)) for p in proxies]
    commands = asyncio.ensure_future(_commands(proxies))
    try:
        done, _ = await asyncio.wait([commands, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in [commands, *tasks]:
            task.cancel()
        for proxy in proxies:
            if proxy.conn is not None:
                proxy.conn.abort()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.control_scale_clients", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", type=Path, required=True, help="JSON: address, identities, tokens, CSRs")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    try:
        asyncio.run(run(spec))
    except (GrpcError, OSError, TimeoutError, ValueError) as exc:
        emit({"event": "error", "error": f"{exc.__class__.__name__}: {exc}"})
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
