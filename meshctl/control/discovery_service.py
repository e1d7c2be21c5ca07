"""Discovery.Watch: every proxy gets the whole snapshot on connect, then every change.

A proxy that asks for deltas (WatchRequest.accept_delta) gets after a change only what changed, as
Envoy's delta xDS does: at 1,000 proxies the whole mesh is ~135 KiB, and sending it to every proxy at
every change cost ~135 MB of encryption per change. A watcher that fell behind (a slow proxy whose
stream skipped versions) gets the chain of deltas it missed, or the whole snapshot when the store no
longer keeps them all; an old proxy gets the whole snapshot every time. A dead proxy is noticed by
the server's HTTP/2 keepalive pings, which cancel its stream.

Snapshots and deltas go out as the bytes the store serialised once per change (the server
sends them as they are), so a change costs one encoding however many proxies watch.

Only workloads of the mesh may watch it: the request carries the workload's token, checked like
Identity.Certify checks it, and must name the identity the token was issued for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping

from meshctl.api import mesh_pb2
from meshctl.control.config import TokenEntry
from meshctl.control.identity_service import MAX_TOKEN_BYTES, find_token
from meshctl.control.metrics import ControlMetrics
from meshctl.control.rpc import CallContext, StatusCode
from meshctl.control.store import MeshStore

log = logging.getLogger("meshctl.control.discovery")


WATCH = b"/meshctl.control.v1.Discovery/Watch"


class DiscoveryService:
    def __init__(
        self, store: MeshStore, metrics: ControlMetrics, tokens: Callable[[], Mapping[str, TokenEntry]]
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._tokens = tokens

    async def Watch(  # noqa: N802 - the gRPC method name
        self, request: mesh_pb2.WatchRequest, context: CallContext
    ) -> AsyncIterator[bytes]:
        who = f"{request.proxy_id or '?'!r} ({request.identity or 'no identity'!r}, {context.peer()})"
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("watch refused for %s: %s", who, refusal[1])
            await context.abort(*refusal)
        log.info("watch opened by %s, proxy version %r", who, request.proxy_version)
        self._metrics.watch_streams += 1
        store, metrics, deltas = self._store, self._metrics, request.accept_delta
        sent = -1
        try:
            while not store.closed:
                # The version, the snapshot and the chain are read together, before any await: the
                # store may change while a message is being sent.
                version, wire = store.version, store.snapshot_wire
                if version != sent:
                    chain = store.deltas_since(sent) if deltas and sent >= 0 else []
                    for message in chain or [wire]:
                        yield message
                    if chain:
                        metrics.deltas_sent += len(chain)
                    else:
                        metrics.snapshots_sent += 1
                    sent = version
                await store.wait_for_change(sent)
        finally:
            self._metrics.watch_streams -= 1
            log.info("watch closed by %s", who)

    def _refusal(self, request: mesh_pb2.WatchRequest) -> tuple[StatusCode, str] | None:
        if not request.token or len(request.token) > MAX_TOKEN_BYTES:
            return StatusCode.UNAUTHENTICATED, "send the workload token with the request"
        matches = find_token(request.token, self._tokens())
        if not matches:
            return StatusCode.UNAUTHENTICATED, "token not recognised"
        if all(entry.identity != request.identity for entry in matches):
            return StatusCode.PERMISSION_DENIED, f"the token is not for identity {request.identity!r}"
        return None
