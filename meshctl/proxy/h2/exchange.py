"""One proxied HTTP/2 request (sans-IO): a downstream stream bridged to an upstream stream.

Bytes move in both directions only as fast as the far side's flow-control window allows, and each chunk
is acknowledged to the side it came from only once it has been handed on, so a slow peer stalls its
sender instead of filling the proxy's memory. Every way a request can end — response, deadline,
upstream reset or loss, no route — records metrics exactly once (`_finish`, or `pump_response` inline),
and every failure becomes a response: another attempt or the failure's answer is h2/recovery.py's part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngh2 import ErrorCode

from meshctl.proxy.errors import ConnectFailed
from meshctl.proxy.h2 import grpc, recovery
from meshctl.proxy.h2.headers import Block, Header, RequestHead
from meshctl.proxy.h2.recovery import MAX_ATTEMPTS, not_delivered
from meshctl.proxy.h2.types import Connector, Plan, TimerHandle, UpstreamLink
from meshctl.proxy.policy import deadline

if TYPE_CHECKING:
    from meshctl.proxy.h2.relay import DownstreamSession


class Exchange:
    __slots__ = ("down", "sid", "head", "plan", "grpc", "up", "usid", "started", "deadline", "timer",
                 "req_q", "req_end", "req_trailers", "req_sent_end", "resp_q", "resp_end", "resp_trailers",
                 "resp_sent_end", "answered", "status", "grpc_status", "latency_ms", "replay", "noack",
                 "attempts", "done", "own_deadline")  # fmt: skip

    # Retries and failure answers (h2/recovery.py), as methods: the forward path below calls them.
    upstream_reset = recovery.upstream_reset
    upstream_lost = recovery.upstream_lost
    fail = recovery.fail
    _keep_for_replay = recovery.keep_for_replay
    _retry_route = recovery.retry_route
    _again = recovery.again
    _expired = recovery.expired
    _answer_failure = recovery.answer_failure

    def __init__(self, down: DownstreamSession, sid: int, head: RequestHead, plan: Plan, end: bool) -> None:
        self.down = down
        self.sid = sid
        self.head = head
        self.plan = plan
        self.grpc = head.content_type[:16] == b"application/grpc"  # grpc.is_grpc, inline
        self.up: UpstreamLink | None = None
        self.usid = 0
        self.started = down.timers.time()
        self.deadline: float | None = None
        self.timer: TimerHandle | None = None
        # Lists, not deques: a few chunks at most (flow control bounds them), and a deque's first block is
        # an allocation pymalloc does not serve, twice a request. The request's list only once a body
        # arrives: most requests have none.
        self.req_q: list[bytes] | None = None  # received downstream, not yet handed upstream (nor acknowledged)
        self.req_end = end
        self.req_trailers: list[Header] | None = None
        self.req_sent_end = False
        self.resp_q: list[bytes] = []
        self.resp_end = False
        self.resp_trailers: list[Header] | None = None
        self.resp_sent_end = False
        self.answered = False  # a response header block went downstream
        self.status = 0
        self.grpc_status: int | None = None
        self.latency_ms = 0.0
        # Request body sent so far, while a replay is still possible: () until a first chunk (most requests
        # have none), None once a replay is not.
        self.replay: list[bytes] | tuple[()] | None = ()
        self.noack = 0  # replayed bytes: acknowledged downstream on the first attempt already
        self.attempts = 0
        self.done = False
        self.own_deadline = False  # the client's deadline is tighter than the route's timeout

    # -- start ------------------------------------------------------------------------------------
    def start(self, connector: Connector) -> None:
        plan = self.plan
        if plan.failure is not None:
            self._answer_failure(plan.failure)
            return
        head = self.head
        asked = grpc.parse_timeout(head.grpc_timeout) if self.grpc and head.grpc_timeout else None
        if head.mesh_timeout is not None:
            mesh = deadline.parse(head.mesh_timeout)
            asked = mesh if asked is None or mesh is None else min(asked, mesh)
        if asked is None:  # the common case: the route's timeout, if any
            timeout = plan.timeout_s
        else:
            timeout = deadline.effective(plan.timeout_s, asked)
            self.own_deadline = plan.timeout_s is None or asked < plan.timeout_s
        if timeout is not None:
            self.deadline = self.started + timeout
            self.timer = self.down.timers.call_at(self.deadline, self._expired)
        self.attempts = 1
        if plan.delay_s:  # injected: the first attempt waits (the deadline above runs meanwhile)
            self.down.timers.call_at(self.started + plan.delay_s, self._delayed)
            return
        connector.connect(self)

    def _delayed(self) -> None:
        if not self.done and self.up is None:
            self.down.connector.connect(self)

    def attach(self, up: UpstreamLink) -> bool:
        """Open the upstream stream on `up`; False when the connection could not take it."""
        if self.done:
            return True
        head = self.head
        headers = head.headers
        if self.deadline is not None:  # forward the time that is left, not the time that was asked
            left = self.deadline - self.down.timers.time()
            if left <= 0:
                self._expired()
                return True
            if self.grpc:
                value = grpc.format_timeout(left)
                headers = [(k, value if k == b"grpc-timeout" else v) for k, v in headers]
                if head.grpc_timeout is None:
                    headers.append((b"grpc-timeout", value))
            if head.mesh_timeout is not None:
                value = deadline.format_left(left)
                headers = [(k, value if k == deadline.HEADER else v) for k, v in headers]
        whole = self.req_end and not self.req_q and self.req_trailers is None
        usid = up.side.start(headers, whole, head.method == b"HEAD")
        if usid is None:
            return False
        self.up, self.usid = up, usid
        up.exchanges[usid] = self
        if whole:  # the whole request went with its header block: nothing to pump
            self.req_sent_end = True
        else:
            self.req_sent_end = False
            self.pump_request()
        return True

    # -- request direction ------------------------------------------------------------------------
    def on_request_data(self, data: bytes, end: bool) -> None:
        if data:
            q = self.req_q
            if q is None:
                self.req_q = [data]
            else:
                q.append(data)
            if self.plan.tap is not None:
                self.plan.tapped(True, data)
        self.req_end = self.req_end or end
        if self.up is not None:
            self.pump_request()

    def on_request_trailers(self, headers: list[Header]) -> None:
        self.req_trailers = headers
        self.req_end = True
        if self.up is not None:
            self.pump_request()

    def pump_request(self) -> None:
        up = self.up
        if up is None or self.done:
            return
        side, usid, q = up.side, self.usid, self.req_q
        down = self.down.side
        while q:
            room = side.window(usid)
            if room <= 0:
                up.blocked.add(self)
                return
            chunk = q[0]
            if len(chunk) > room:
                chunk, q[0] = chunk[:room], chunk[room:]
            else:
                del q[0]
            last = not q and self.req_end and self.req_trailers is None
            side.send_data(usid, chunk, last)  # positional: a keyword argument costs more
            size = len(chunk)
            if self.noack:
                skip = min(self.noack, size)
                self.noack -= skip
                size -= skip
            down.ack(self.sid, size)
            self._keep_for_replay(chunk)
            if last:
                self.req_sent_end = True
        if self.req_end and not self.req_sent_end:
            self.req_sent_end = True
            if self.req_trailers is not None:
                side.send_headers(usid, self.req_trailers, end_stream=True)
            else:
                side.send_data(usid, b"", end_stream=True)

    # -- response direction -----------------------------------------------------------------------
    def on_response(self, status: int, headers: Block, end: bool) -> None:
        if self.replay is not None and self.req_sent_end:  # the whole request is at hand: it can be sent again
            if status >= 502 and not_delivered(headers):
                # Let go of this stream only once another attempt is certain: else its body is the answer.
                if self.attempts < MAX_ATTEMPTS and self.plan.repick(ConnectFailed("the peer proxy lost its app")):
                    self._detach_up(reset=not end)
                    self._again()
                    return
            elif self.plan.budget is not None and self._retry_route(status, headers, end):
                return
        self.replay = None
        self.status = status
        self.latency_ms = (self.down.timers.time() - self.started) * 1000.0
        if self.grpc and end:
            self.grpc_status = grpc.status_of(headers)
        self.answered = True
        if self.plan.set_cookie is not None:  # session affinity's new key
            headers = [*headers, (b"set-cookie", self.plan.set_cookie)]
        self.down.side.send_headers(self.sid, headers, end)  # positional, as below
        tap = self.plan.tap
        if tap is not None:
            tap.response(status, list(headers))  # the tap's type; only while tapped
        if end:
            self.resp_end = self.resp_sent_end = True
            self._finish()

    def on_response_trailers(self, headers: list[Header]) -> None:
        self.resp_trailers = headers
        if self.plan.tap is not None:
            self.plan.tap_trailers = headers
        self.resp_end = True
        if self.grpc:
            self.grpc_status = grpc.status_of(headers)
        self.pump_response()

    def pump_response(self, data: bytes = b"", end: bool = False) -> None:
        """Hand on the response body queued, and `data` just read (`end`: its last bytes), as far as the
        downstream window allows; the whole response handed on finishes the exchange."""
        if data:
            self.resp_q.append(data)
            if self.plan.tap is not None:
                self.plan.tapped(False, data)
        if end:
            self.resp_end = True
        if self.done:
            return
        down, sid, q, up = self.down.side, self.sid, self.resp_q, self.up
        while q:
            room = down.window(sid)
            if room <= 0:
                self.down.blocked.add(self)
                return
            chunk = q[0]
            if len(chunk) > room:
                chunk, q[0] = chunk[:room], chunk[room:]
            else:
                del q[0]
            last = not q and self.resp_end and self.resp_trailers is None
            down.send_data(sid, chunk, last)
            self.resp_sent_end = last
            if up is not None:
                up.side.ack(self.usid, len(chunk))
        if not self.resp_end:
            return
        if not self.resp_sent_end:
            self.resp_sent_end = True
            if self.resp_trailers is not None:
                down.send_headers(sid, self.resp_trailers, end_stream=True)
            else:
                down.send_data(sid, b"", end_stream=True)
        self.done = True  # _finish, inline (once a request)
        if self.grpc and self.grpc_status is None:
            self.grpc_status = grpc.status_for_http(self.status)
        self.plan.finish(self.status, self.grpc_status, self.latency_ms)
        if not self.req_end:
            down.reset(sid, ErrorCode.NO_ERROR)
        self._release()

    def cancel(self) -> None:
        """The downstream stream or connection went away: release the upstream stream quietly."""
        if not self.done:
            self.done = True
            self.plan.abandon()
            self._release()

    def _finish(self) -> None:
        """The response is complete (pump_response repeats this inline)."""
        self.done = True
        if self.grpc and self.grpc_status is None:  # a gRPC response that carried no grpc-status
            self.grpc_status = grpc.status_for_http(self.status)
        self.plan.finish(self.status, self.grpc_status, self.latency_ms)
        if not self.req_end:  # the response is complete but the client is still sending (RFC 9113 §8.1)
            self.down.side.reset(self.sid, ErrorCode.NO_ERROR)
        self._release()

    def _detach_up(self, reset: bool) -> None:
        up = self.up
        if up is None:
            return
        self.up = None
        if self.resp_q:
            up.side.ack(self.usid, sum(map(len, self.resp_q)))
        if reset and self.usid in up.side.streams:
            up.side.reset(self.usid, ErrorCode.CANCEL)
        up.forget(self)

    def _release(self) -> None:
        """Return flow-control credit still held and unhook from both sessions."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.req_q:
            self.down.side.ack(self.sid, sum(map(len, self.req_q)))
            self.req_q = None
        up = self.up
        if up is not None:  # _detach_up(reset=True), inline
            self.up = None
            side = up.side
            if self.resp_q:
                side.ack(self.usid, sum(map(len, self.resp_q)))
                self.resp_q.clear()
            if self.usid in side.streams:
                side.reset(self.usid, ErrorCode.CANCEL)
            up.forget(self)
        elif self.resp_q:
            self.resp_q.clear()
        self.replay = None
        down = self.down  # leave the downstream session (relay.DownstreamSession.on_idle says how)
        exchanges = down.exchanges
        if exchanges.get(self.sid) is self:
            del exchanges[self.sid]
        if down.blocked:
            down.blocked.discard(self)
        if not exchanges and down.on_idle is not None:
            down.on_idle()

