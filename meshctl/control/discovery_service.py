"""Discovery.Watch: every proxy gets the whole snapshot on connect and again after every change.

Snapshots are small (a mesh's services and resources), so sending them whole keeps proxies simple:
replace the state atomically, keep the last one when the stream breaks. A dead proxy is noticed by
the server's HTTP/2 keepalive pings, which cancel its stream.

The snapshot goes out as the bytes the store serialised once per change (the method is registered
without a response serialiser), so a change costs one encoding however many proxies watch.

Only workloads of the mesh may watch it: the request carries the workload's token, checked like
Identity.Certify checks it, and must name the identity the token was issued for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc

from meshctl.api import mesh_pb2
from meshctl.control.config import TokenEntry
from meshctl.control.identity_service import MAX_TOKEN_BYTES, find_token
from meshctl.control.metrics import ControlMetrics
from meshctl.control.store import MeshStore

log = logging.getLogger("meshctl.control.discovery")


SERVICE = "meshctl.control.v1.Discovery"


class DiscoveryService:
    def __init__(
        self, store: MeshStore, metrics: ControlMetrics, tokens: Callable[[], Mapping[str, TokenEntry]]
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._tokens = tokens

    async def Watch(  # noqa: N802 - the gRPC method name
        self, request: mesh_pb2.WatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        who = f"{request.proxy_id or '?'!r} ({request.identity or 'no identity'!r}, {context.peer()})"
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("watch refused for %s: %s", who, refusal[1])
            await context.abort(*refusal)
        log.info("watch opened by %s, proxy version %r", who, request.proxy_version)
        self._metrics.watch_streams += 1
        sent = -1
        try:
            while not self._store.closed:
                version, wire = self._store.version, self._store.snapshot_wire
                if version != sent:
                    yield wire
                    sent = version
                    self._metrics.snapshots_sent += 1
                await self._store.wait_for_change(sent)
        finally:
            self._metrics.watch_streams -= 1
            log.info("watch closed by %s", who)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register Watch with serialised snapshots as its responses (the generated helper would encode each)."""
        watch = grpc.unary_stream_rpc_method_handler(
            self.Watch, request_deserializer=mesh_pb2.WatchRequest.FromString, response_serializer=None
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Watch": watch}),))

    def _refusal(self, request: mesh_pb2.WatchRequest) -> tuple[grpc.StatusCode, str] | None:
        if not request.token or len(request.token) > MAX_TOKEN_BYTES:
            return grpc.StatusCode.UNAUTHENTICATED, "send the workload token with the request"
        matches = find_token(request.token, self._tokens())
        if not matches:
            return grpc.StatusCode.UNAUTHENTICATED, "token not recognised"
        if all(entry.identity != request.identity for entry in matches):
            return grpc.StatusCode.PERMISSION_DENIED, f"the token is not for identity {request.identity!r}"
        return None
