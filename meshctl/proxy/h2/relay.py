"""Sessions (sans-IO): route the stream events of one HTTP/2 connection to the exchanges they belong to.

A `DownstreamSession` owns the requests of a connection accepted by the proxy, keyed by stream id; an
`UpstreamSession` owns the upstream ends of those exchanges on one pooled connection, keyed by its own
stream ids. Exchanges of many downstream connections share one upstream connection. Neither session
touches a socket: the glue feeds bytes in and flushes the Outbox after each read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from meshctl.proxy.h2.ends import DownstreamH2, UpstreamH2
from meshctl.proxy.h2.events import Failed, Reset, Trailers, Window
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.headers import Block, RequestHead
from meshctl.proxy.h2.types import Connector, Plan, Timers


class Policy(Protocol):
    def plan(self, head: RequestHead) -> Plan:
        """Route one request (never raises: a request that cannot be routed gets a Plan with a failure)."""
        ...


class DownstreamSession:
    __slots__ = ("side", "policy", "connector", "timers", "exchanges", "blocked", "on_idle")

    def __init__(self, side: DownstreamH2, policy: Policy, connector: Connector, timers: Timers) -> None:
        self.side = side
        self.policy = policy
        self.connector = connector
        self.timers = timers
        self.exchanges: dict[int, Exchange] = {}
        self.blocked: set[Exchange] = set()  # exchanges waiting for downstream window
        # Set while draining: called when the last one ends. An exchange that is done leaves `exchanges` and
        # `blocked` and calls it itself (Exchange._release: no call into the session, once a request).
        self.on_idle: Callable[[], None] | None = None
        side.on_request = self._open  # requests and their DATA come as calls, not events
        side.on_body = self._body

    def receive(self, data: bytes) -> bool:
        """Feed bytes read from the connection; False once the connection must be closed."""
        exchanges = self.exchanges
        for ev in self.side.receive(data):
            if type(ev) is Trailers:  # the events are final classes: `is` costs less than isinstance()
                ex = exchanges.get(ev.stream_id)
                if ex is not None:
                    ex.on_request_trailers(ev.headers)
            elif type(ev) is Window:
                self._window(ev.stream_id)
            elif type(ev) is Reset:
                ex = exchanges.get(ev.stream_id)
                if ex is not None:
                    ex.cancel()
            elif type(ev) is Failed:
                self.lost()
                return False
        return True

    def _open(self, sid: int, head: RequestHead, end: bool) -> None:
        ex = Exchange(self, sid, head, self.policy.plan(head), end)
        self.exchanges[sid] = ex
        ex.start(self.connector)

    def _body(self, sid: int, data: bytes, end: bool) -> None:
        ex = self.exchanges.get(sid)
        if ex is not None:
            ex.on_request_data(data, end)
        else:
            self.side.ack(sid, len(data))

    def _window(self, stream_id: int) -> None:
        if stream_id == 0:
            self.resume()
            return
        ex = self.exchanges.get(stream_id)
        if ex is not None and ex in self.blocked:
            self.blocked.discard(ex)
            ex.pump_response()

    def resume(self) -> None:
        """Window or transport buffer space came back: move what waits for it."""
        if self.blocked:
            waiting, self.blocked = self.blocked, set()
            for ex in waiting:
                ex.pump_response()

    def lost(self) -> None:
        """The connection is gone: cancel every exchange (their upstream streams are reset)."""
        for ex in list(self.exchanges.values()):
            ex.cancel()

    def drain(self, on_idle: Callable[[], None]) -> None:
        """Graceful GOAWAY; `on_idle` runs once no request is left (at once if none is)."""
        self.on_idle = on_idle
        self.side.start_drain()
        if not self.exchanges:
            on_idle()


class UpstreamSession:
    __slots__ = ("side", "key", "exchanges", "blocked", "on_free")

    def __init__(self, side: UpstreamH2, key: object, on_free: Callable[[UpstreamSession], None]) -> None:
        self.side = side
        self.key = key  # the pool's endpoint key
        self.exchanges: dict[int, Exchange] = {}
        self.blocked: set[Exchange] = set()  # exchanges waiting for upstream window
        self.on_free = on_free  # a stream slot was released
        side.on_response = self._response  # responses and their DATA come as calls, not events
        side.on_body = self._body

    def receive(self, data: bytes) -> bool:
        """Feed bytes read from the connection; False once the connection must be closed."""
        exchanges = self.exchanges
        for ev in self.side.receive(data):
            if type(ev) is Trailers:  # the events are final classes: `is` costs less than isinstance()
                ex = exchanges.get(ev.stream_id)
                if ex is not None:
                    ex.on_response_trailers(ev.headers)
            elif type(ev) is Window:
                self._window(ev.stream_id)
            elif type(ev) is Reset:
                ex = exchanges.get(ev.stream_id)
                if ex is not None:
                    ex.upstream_reset(ev.error_code, ev.reason)
            elif type(ev) is Failed:
                self.lost(ev.reason)
                return False
        return True

    def _response(self, sid: int, status: int, headers: Block, end: bool) -> None:
        ex = self.exchanges.get(sid)
        if ex is not None:
            ex.on_response(status, headers, end)

    def _body(self, sid: int, data: bytes, end: bool) -> None:
        ex = self.exchanges.get(sid)
        if ex is not None:
            ex.pump_response(data, end)
        else:
            self.side.ack(sid, len(data))

    def _window(self, stream_id: int) -> None:
        if stream_id == 0:
            self.resume()
            return
        ex = self.exchanges.get(stream_id)
        if ex is not None and ex in self.blocked:
            self.blocked.discard(ex)
            ex.pump_request()

    def resume(self) -> None:
        if self.blocked:
            waiting, self.blocked = self.blocked, set()
            for ex in waiting:
                ex.pump_request()

    def forget(self, ex: Exchange) -> None:
        if self.exchanges.get(ex.usid) is ex:
            del self.exchanges[ex.usid]
        if self.blocked:
            self.blocked.discard(ex)
        self.on_free(self)

    def lost(self, reason: str) -> None:
        """The connection failed: every exchange on it answers its client (gRPC: UNAVAILABLE)."""
        if self.side.failed is None:
            self.side.failed = reason
        for ex in list(self.exchanges.values()):
            ex.upstream_lost(reason)

    @property
    def idle(self) -> bool:
        return not self.exchanges
