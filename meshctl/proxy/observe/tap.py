"""TapHub: the request pipeline's tap, matching and queueing events for each subscriber.

The pipeline reads `hub.active` per request (False while nobody taps, so tapping costs nothing then) and
calls `begin` when it is True. Matching happens here, before anything is built: a request no subscriber
wants costs one predicate call per subscriber. Each event is serialised and gRPC-framed once and shared
by every subscriber that takes it. Each subscriber has a bounded queue; on overflow events are dropped
and counted, and a rate limit (requests/s) applies per subscriber; both counts reach the client in drop
notices. Everything runs on the event loop thread and never raises into the caller.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from meshctl.api import tap_pb2
from meshctl.identity import parse_identity
from meshctl.proxy.observe.tap_match import Head, Outcome, Predicate, Side, compile_match

log = logging.getLogger("meshctl.proxy.tap")

Headers = list[tuple[bytes, bytes]]

SENSITIVE = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"set-cookie", b"x-api-key",
                       b"x-auth-token", b"x-csrf-token", b"x-xsrf-token", b"l5d-dst-token"})  # fmt: skip
REDACTED = b"[redacted]"
MAX_HEADERS = 64  # per event; more are cut off
MAX_HEADER_VALUE = 1024
DEFAULT_LIMIT = 10_000  # requests/s per subscriber when the client asks for 0
MAX_BODY = 65_536
DEFAULT_BODY = 4_096
QUEUE_EVENTS = 8_192  # per subscriber
QUEUE_BYTES = 2 * 1024 * 1024


def frame(message: tap_pb2.TapEvent) -> bytes:
    """One gRPC length-prefixed message (uncompressed)."""
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def _headers(headers: Headers | None, out: object) -> None:
    if not headers:
        return
    add = out.add  # type: ignore[attr-defined]
    for count, (name, value) in enumerate(headers):
        if count >= MAX_HEADERS:
            break
        if name[:1] == b":":
            continue  # pseudo-headers are fields of their own
        lower = name.lower()
        add(name=lower.decode("latin-1"), value=REDACTED if lower in SENSITIVE else value[:MAX_HEADER_VALUE])


class Subscriber:
    """One Observe call: its match, limit, body option, queue and loss counters."""

    def __init__(self, request: tap_pb2.ObserveRequest, wake: Callable[[], None], clock: Callable[[], float]) -> None:
        self.match: Predicate = compile_match(request.match if request.HasField("match") else None)
        self.limit = request.limit or DEFAULT_LIMIT
        self.bodies = request.extract.bodies
        self.max_body = min(request.extract.max_body_bytes or DEFAULT_BODY, MAX_BODY)
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.queue_full = 0  # requests lost since the last notice
        self.rate_limited = 0
        self.delivered = 0  # requests taken
        self.lost_before = 0  # requests lost and already told in notices
        self._wake = wake
        self._woken = False
        self._clock = clock
        self._tokens = float(self.limit)
        self._refilled = clock()

    def admit(self) -> bool:
        """Token bucket: `limit` requests per second, bursts up to one second's worth."""
        now = self._clock()
        self._tokens = min(float(self.limit), self._tokens + (now - self._refilled) * self.limit)
        self._refilled = now
        if self._tokens < 1.0:
            self.rate_limited += 1
            return False
        self._tokens -= 1.0
        self.delivered += 1
        return True

    def push(self, data: bytes) -> bool:
        """Queue one framed event; False (and nothing queued) when the queue is full."""
        if len(self.queue) >= QUEUE_EVENTS or self.queued_bytes + len(data) > QUEUE_BYTES:
            return False
        self.queue.append(data)
        self.queued_bytes += len(data)
        if not self._woken:
            self._woken = True
            self._wake()
        return True

    def push_notice(self) -> None:
        """Queue a drop notice when something was lost since the last one (it may exceed the bound)."""
        if not (self.queue_full or self.rate_limited):
            return
        event = tap_pb2.TapEvent(dropped=tap_pb2.Dropped(queue_full=self.queue_full, rate_limited=self.rate_limited))
        self.lost_before += self.queue_full + self.rate_limited
        self.queue_full = self.rate_limited = 0
        data = frame(event)
        self.queue.append(data)
        self.queued_bytes += len(data)
        if not self._woken:
            self._woken = True
            self._wake()

    @property
    def lost(self) -> int:
        """Requests this subscriber lost in all (full queue or over its limit)."""
        return self.lost_before + self.queue_full + self.rate_limited

    def take(self, budget: int) -> bytes:
        """Up to `budget` bytes of whole queued events (at least one event if any is queued)."""
        parts: list[bytes] = []
        size = 0
        queue = self.queue
        while queue and (not parts or size + len(queue[0]) <= budget):
            data = queue.popleft()
            parts.append(data)
            size += len(data)
        self.queued_bytes -= size
        if not queue:
            self._woken = False
        return b"".join(parts)


class _Tap:
    """A subscriber's view of one request: its verdict so far and, while undecided, what it held back."""

    __slots__ = ("sub", "decided", "held", "lost")

    def __init__(self, sub: Subscriber, decided: bool) -> None:
        self.sub = sub
        self.decided = decided
        self.held: list[bytes] | None = None if decided else []
        self.lost = False

    def send(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
        elif not self.lost and not self.sub.push(data):
            self.lost = True  # the rest of this request is dropped too, counted once
            self.sub.queue_full += 1


class TapHub:
    def __init__(
        self,
        *,
        pod: str,
        deployment: str,
        namespace: str,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.pod, self.deployment, self.namespace, self.identity = pod, deployment, namespace, identity
        self.active = False
        self.subscribers: list[Subscriber] = []
        self.clock, self.wall = clock, wall
        self._next_id = 0
        self._peers: dict[str, tuple[str, str]] = {}
        # counters (the tap server logs them; tests read them): requests seen and tapped
        self.seen = 0
        self.tapped = 0
        self.errors = 0

    def subscribe(self, request: tap_pb2.ObserveRequest, wake: Callable[[], None]) -> Subscriber:
        """Add a subscriber (MatchError when its match is refused)."""
        sub = Subscriber(request, wake, self.clock)
        self.subscribers = [*self.subscribers, sub]
        self.active = True
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers = [s for s in self.subscribers if s is not sub]
        self.active = bool(self.subscribers)

    def _peer(self, identity: str | None) -> tuple[str, str]:
        """(workload, namespace) of a peer identity: its service account stands for its workload."""
        if not identity:
            return "", ""
        found = self._peers.get(identity)
        if found is None:
            try:
                found = parse_identity(identity)
            except ValueError:
                found = ("", "")
            if len(self._peers) < 4096:
                self._peers[identity] = found
        return found

    def begin(
        self,
        direction: str,
        src: str,
        dst: str,
        src_identity: str | None,
        dst_identity: str | None,
        tls: bool,
        method: str,
        authority: str,
        path: str,
        route: str,
        headers: Headers,
    ) -> TapStream | None:
        try:
            return self._begin(direction, src, dst, src_identity, dst_identity, tls, method, authority, path, route,
                               headers)  # fmt: skip
        except Exception:  # never into the request path
            self._error("begin")
            return None

    def _begin(
        self,
        direction: str,
        src: str,
        dst: str,
        src_identity: str | None,
        dst_identity: str | None,
        tls: bool,
        method: str,
        authority: str,
        path: str,
        route: str,
        headers: Headers,
    ) -> TapStream | None:
        self.seen += 1
        inbound = direction == "inbound"
        own = (self.deployment, self.namespace, self.pod)
        if inbound:
            source = Side(src, src_identity or "", *self._peer(src_identity), "")
            destination = Side(dst, self.identity, *own)
        else:  # the local app's side is this proxy's own workload, whatever the connection presented
            source = Side(src, self.identity, *own)
            destination = Side(dst, dst_identity or "", *self._peer(dst_identity), "")
        head = Head(tap_pb2.INBOUND if inbound else tap_pb2.OUTBOUND, source, destination, method, authority, path,
                    route)  # fmt: skip
        taps: list[_Tap] = []
        for sub in self.subscribers:
            verdict = sub.match(head, None)
            if verdict is False:
                continue
            if verdict is True and not sub.admit():
                continue
            taps.append(_Tap(sub, verdict is True))
        if not taps:
            return None
        self.tapped += 1
        self._next_id += 1
        stream = TapStream(self, self._next_id, head, taps)
        event = tap_pb2.TapEvent()
        r = event.request_init
        r.id, r.timestamp_us, r.direction, r.tls = stream.id, int(self.wall() * 1e6), head.direction, tls
        for side, out in ((source, r.source), (destination, r.destination)):
            out.address, out.identity, out.workload, out.namespace, out.pod = (
                side.address, side.identity, side.workload, side.namespace, side.pod,
            )  # fmt: skip
        r.method, r.authority, r.path, r.route = method, authority, path, route
        _headers(headers, r.headers)
        stream.send(frame(event))
        return stream

    def _error(self, where: str) -> None:
        self.errors += 1
        if self.errors <= 3:  # enough to diagnose, never a log flood from the request path
            log.exception("tap: %s failed; the request goes on untapped by this event", where)


class TapStream:
    """One tapped request. The pipeline calls response (at most once), body (any number) and end (once)."""

    __slots__ = ("hub", "id", "head", "taps", "started", "responded", "status", "body_cap", "bodies", "ended")

    def __init__(self, hub: TapHub, id: int, head: Head, taps: list[_Tap]) -> None:
        self.hub, self.id, self.head, self.taps = hub, id, head, taps
        self.started = hub.clock()
        self.responded: float | None = None
        self.status: int | None = None
        # bodies are kept only when a subscriber asked, and only as far as the largest ask
        self.body_cap = max((t.sub.max_body for t in taps if t.sub.bodies), default=0)
        self.bodies: dict[bool, bytearray] | None = {True: bytearray(), False: bytearray()} if self.body_cap else None
        self.ended = False

    def send(self, data: bytes) -> None:
        for tap in self.taps:
            tap.send(data)

    def response(self, status: int, headers: Headers) -> None:
        try:
            if self.ended or self.responded is not None:
                return
            self.responded, self.status = self.hub.clock(), status
            event = tap_pb2.TapEvent()
            r = event.response_init
            r.id, r.timestamp_us, r.http_status = self.id, int(self.hub.wall() * 1e6), status
            r.since_request_init_us = int((self.responded - self.started) * 1e6)
            _headers(headers, r.headers)
            self.send(frame(event))
        except Exception:
            self.hub._error("response")

    def body(self, request: bool, data: bytes) -> None:
        bodies = self.bodies
        if bodies is None or self.ended:
            return
        kept = bodies[request]
        if len(kept) <= self.body_cap:  # one byte past the cap tells "truncated" apart
            kept += data[: self.body_cap + 1 - len(kept)]

    def end(self, grpc_status: int | None, failure: str | None, request_bytes: int, response_bytes: int,
            trailers: Headers | None) -> None:  # fmt: skip
        try:
            if self.ended:
                return
            self.ended = True
            self._end(grpc_status, failure, request_bytes, response_bytes, trailers)
        except Exception:
            self.hub._error("end")

    def _end(self, grpc_status: int | None, failure: str | None, request_bytes: int, response_bytes: int,
             trailers: Headers | None) -> None:  # fmt: skip
        now = self.hub.clock()
        latency = int((now - self.started) * 1e6)
        outcome = Outcome(self.status, grpc_status, latency)
        event = tap_pb2.TapEvent()
        e = event.response_end
        e.id, e.timestamp_us, e.since_request_init_us = self.id, int(self.hub.wall() * 1e6), latency
        e.since_response_init_us = int((now - self.responded) * 1e6) if self.responded is not None else 0
        e.request_bytes, e.response_bytes, e.response_started = request_bytes, response_bytes, self.status is not None
        if grpc_status is not None:
            e.grpc_status = grpc_status
        if failure:
            e.failure = failure
        _headers(trailers, e.trailers)
        end = frame(event)
        for tap in self.taps:
            if not tap.decided:
                if tap.sub.match(self.head, outcome) is not True or not tap.sub.admit():
                    continue
                held, tap.held, tap.decided = tap.held or [], None, True
                for data in held:
                    tap.send(data)
            if tap.sub.bodies and self.bodies is not None:
                for request in (True, False):
                    if self.bodies[request]:
                        tap.send(self._body_frame(request, tap.sub.max_body))
            tap.send(end)

    def _body_frame(self, request: bool, limit: int) -> bytes:
        assert self.bodies is not None
        kept = self.bodies[request]
        chunk = tap_pb2.BodyChunk(id=self.id, request=request, data=bytes(kept[:limit]), truncated=len(kept) > limit)
        return frame(tap_pb2.TapEvent(body=chunk))
