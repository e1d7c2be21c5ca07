"""TapHub driven by direct calls, as the request pipeline drives it: matching, deferral, redaction,
limits, bounded queues and that nothing raises into the caller."""

from __future__ import annotations

import pytest

from meshctl.api import tap_pb2
from meshctl.proxy.observe import tap as tapmod
from meshctl.proxy.observe.tap import TapHub, frame

ID_WEB = "webapp.booksapp.serviceaccount.identity.meshctl.cluster.local"
ID_BOOKS = "books.booksapp.serviceaccount.identity.meshctl.cluster.local"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hub(clock: Clock | None = None) -> TapHub:
    return TapHub(pod="books-0", deployment="books", namespace="booksapp", identity=ID_BOOKS,
                  clock=clock or Clock(), wall=lambda: 1_790_000_000.0)  # fmt: skip


def events(sub: tapmod.Subscriber) -> list[tap_pb2.TapEvent]:
    raw = sub.take(1 << 30)
    out = []
    while raw:
        assert raw[0] == 0
        size = int.from_bytes(raw[1:5], "big")
        out.append(tap_pb2.TapEvent.FromString(raw[5 : 5 + size]))
        raw = raw[5 + size :]
    return out


def request(h: TapHub, method: str = "GET", path: str = "/books", headers: list[tuple[bytes, bytes]] | None = None,
            direction: str = "inbound") -> tapmod.TapStream | None:  # fmt: skip
    return h.begin(direction, "127.77.1.1:40000", "127.77.3.1:7002", ID_WEB, None, True, method,
                   "books.booksapp.svc.cluster.local:7002", path, "[DEFAULT]", headers or [])  # fmt: skip


def observe(**fields: object) -> tap_pb2.ObserveRequest:
    req = tap_pb2.ObserveRequest(**fields)  # type: ignore[arg-type]
    return req


def test_inactive_until_someone_subscribes_and_after_they_leave() -> None:
    h = hub()
    assert h.active is False
    sub = h.subscribe(observe(), lambda: None)
    assert h.active is True
    h.unsubscribe(sub)
    assert h.active is False and request(h) is None


def test_a_matching_request_streams_req_rsp_end_with_identities_and_redaction() -> None:
    clock = Clock()
    h = hub(clock)
    sub = h.subscribe(observe(match=tap_pb2.Match(method="GET")), lambda: None)
    stream = request(h, headers=[(b":path", b"/books"), (b"Authorization", b"Bearer s3cret"), (b"accept", b"*/*"),
                                 (b"cookie", b"a=b")])  # fmt: skip
    assert stream is not None
    assert request(h, method="POST") is None  # refused at its start: nothing built
    clock.now += 0.004
    stream.response(200, [(b"content-type", b"text/plain"), (b"set-cookie", b"x=y")])
    clock.now += 0.001
    stream.end(None, None, 10, 20, [(b"grpc-status", b"0")])
    req, rsp, end = events(sub)
    r = req.request_init
    assert (r.direction, r.method, r.path, r.route, r.tls) == (tap_pb2.INBOUND, "GET", "/books", "[DEFAULT]", True)
    assert (r.source.identity, r.source.workload, r.source.namespace) == (ID_WEB, "webapp", "booksapp")
    assert (r.destination.identity, r.destination.workload, r.destination.pod) == (ID_BOOKS, "books", "books-0")
    assert [(x.name, x.value) for x in r.headers] == [
        ("authorization", b"[redacted]"), ("accept", b"*/*"), ("cookie", b"[redacted]")
    ]  # fmt: skip
    assert r.timestamp_us == 1_790_000_000_000_000
    assert rsp.response_init.http_status == 200 and rsp.response_init.since_request_init_us == 4000
    assert rsp.response_init.headers[1].value == b"[redacted]"
    e = end.response_end
    assert (e.since_request_init_us, e.since_response_init_us, e.request_bytes, e.response_bytes) == (
        5000,
        1000,
        10,
        20,
    )
    assert not e.HasField("grpc_status") and e.response_started and e.trailers[0].name == "grpc-status"
    assert req.request_init.id == rsp.response_init.id == e.id
    assert (h.seen, h.tapped) == (2, 1)


def test_response_side_terms_hold_a_request_back_until_its_end() -> None:
    clock = Clock()
    h = hub(clock)
    five = tap_pb2.Match(status=tap_pb2.StatusRange(min=500, max=599))
    slow = tap_pb2.Match(min_latency_us=100_000)
    sub = h.subscribe(observe(match=tap_pb2.Match(any=tap_pb2.Match.Seq(matches=[five, slow]))), lambda: None)
    ok, failing, slow_one = request(h), request(h), request(h)
    assert ok is not None and failing is not None and slow_one is not None
    ok.response(200, [])
    failing.response(503, [])
    assert events(sub) == []  # undecided: nothing sent yet
    ok.end(None, None, 0, 0, None)
    failing.end(None, "no endpoints", 0, 0, None)
    clock.now += 0.2
    slow_one.end(None, "client went away", 0, 0, None)  # no response at all, but slow
    got = [(ev.WhichOneof("event"), getattr(ev, ev.WhichOneof("event") or "").id) for ev in events(sub)]
    assert got == [("request_init", 2), ("response_init", 2), ("response_end", 2), ("request_init", 3),
                   ("response_end", 3)]  # fmt: skip


def test_workload_and_identity_peers_and_direction() -> None:
    h = hub()
    web = tap_pb2.Peer(workload=tap_pb2.Workload(namespace="booksapp", name="webapp"))
    sub = h.subscribe(observe(match=tap_pb2.Match(source=web)), lambda: None)
    assert request(h) is not None  # inbound from webapp's identity
    assert request(h, direction="outbound") is None  # outbound: the source is books itself
    h.unsubscribe(sub)
    mine = tap_pb2.Peer(identity=ID_BOOKS)
    h.subscribe(observe(match=tap_pb2.Match(source=mine)), lambda: None)
    assert request(h, direction="outbound") is not None and request(h) is None


def test_rate_limit_per_subscriber_counts_what_it_refuses() -> None:
    clock = Clock()
    h = hub(clock)
    limited = h.subscribe(observe(limit=3), lambda: None)
    free = h.subscribe(observe(), lambda: None)
    for _ in range(10):
        stream = request(h)
        assert stream is not None
        stream.end(None, None, 0, 0, None)
    assert (limited.delivered, limited.rate_limited) == (3, 7)
    assert (free.delivered, free.rate_limited) == (10, 0)
    clock.now += 1.0  # a second later the bucket is full again
    assert request(h) is not None and limited.delivered == 4
    limited.push_notice()
    notice = events(limited)[-1]
    assert notice.dropped == tap_pb2.Dropped(queue_full=0, rate_limited=7)
    assert limited.rate_limited == 0 and limited.lost == 7  # counted from the notice on, kept in the total


def test_a_full_queue_drops_and_counts_whole_requests_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    h = hub()
    woken: list[int] = []
    sub = h.subscribe(observe(), lambda: woken.append(1))
    monkeypatch.setattr(tapmod, "QUEUE_EVENTS", 4)
    for _ in range(3):
        stream = request(h)
        assert stream is not None
        stream.response(200, [])
        stream.end(None, None, 0, 0, None)
    assert len(sub.queue) == 4 and sub.queue_full == 2  # the 2nd request lost its end, the 3rd all of it
    assert woken == [1]  # one wake-up per batch, not per event
    assert len(events(sub)) == 4 and sub.queued_bytes == 0


def test_bodies_only_when_asked_and_capped() -> None:
    h = hub()
    plain = h.subscribe(observe(), lambda: None)
    bodies = h.subscribe(observe(extract=tap_pb2.Extract(bodies=True, max_body_bytes=4)), lambda: None)
    stream = request(h, method="POST")
    assert stream is not None
    stream.body(True, b"hello ")
    stream.body(True, b"world")
    stream.response(200, [])
    stream.body(False, b"ok")
    stream.end(None, None, 11, 2, None)
    assert all(ev.WhichOneof("event") != "body" for ev in events(plain))
    chunks = [ev.body for ev in events(bodies) if ev.WhichOneof("event") == "body"]
    assert [(c.request, c.data, c.truncated) for c in chunks] == [(True, b"hell", True), (False, b"ok", False)]


def test_nothing_raises_into_the_request_path() -> None:
    h = hub()
    sub = h.subscribe(observe(), lambda: None)
    broken = h.begin("inbound", "a", "b", None, None, False, "GET", "x", "/", "", [(None, None)])  # type: ignore[list-item]
    assert broken is None and h.errors == 1
    stream = request(h)
    assert stream is not None
    stream.response(200, [(b"x", None)])  # type: ignore[list-item]
    stream.end(None, None, 0, 0, None)
    stream.end(None, None, 0, 0, None)  # twice: ignored
    assert h.errors == 2 and [ev.WhichOneof("event") for ev in events(sub)] == ["request_init", "response_end"]


def test_frames_are_grpc_length_prefixed() -> None:
    data = frame(tap_pb2.TapEvent(dropped=tap_pb2.Dropped(queue_full=1)))
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == len(data) - 5
