"""Discovery.Watch: every proxy gets the whole snapshot on connect and again after every change.

Snapshots are small (a mesh's services and resources), so sending them whole keeps proxies simple:
replace the state atomically, keep the last one when the stream breaks. A dead proxy is noticed by
the server's HTTP/2 keepalive pings, which cancel its stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from meshctl.control.metrics import ControlMetrics
from meshctl.control.proto import mesh_pb2, mesh_pb2_grpc
from meshctl.control.store import MeshStore

log = logging.getLogger("meshctl.control.discovery")


class DiscoveryService(mesh_pb2_grpc.DiscoveryServicer):
    def __init__(self, store: MeshStore, metrics: ControlMetrics) -> None:
        self._store = store
        self._metrics = metrics

    async def Watch(  # noqa: N802 - the gRPC method name
        self, request: mesh_pb2.WatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[mesh_pb2.Snapshot]:
        who = f"{request.proxy_id or '?'!r} ({request.identity or 'no identity'!r}, {context.peer()})"
        log.info("watch opened by %s, proxy version %r", who, request.proxy_version)
        self._metrics.watch_streams += 1
        sent = -1
        try:
            while not self._store.closed:
                snapshot = self._store.snapshot
                if snapshot.version != sent:
                    yield snapshot
                    sent = snapshot.version
                    self._metrics.snapshots_sent += 1
                await self._store.wait_for_change(sent)
        finally:
            self._metrics.watch_streams -= 1
            log.info("watch closed by %s", who)
