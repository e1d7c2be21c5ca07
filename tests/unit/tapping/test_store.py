"""TapStore: pairing by (instance, id), bounds, drop counts, instance states and subscribers."""

from __future__ import annotations

import threading

from meshctl.tapping.events import Dropped, RequestInit, TapEvent
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.store import TapStore
from tests.unit.tapping.scenario import INGRESS, WEB, scenario


def test_events_pair_into_exchanges_per_instance() -> None:
    store = TapStore()
    for event in scenario():
        store.add(event)
    found = {(e.instance, e.id): e for e in store.exchanges()}
    assert sorted(found) == [("webapp-0", 1), ("webapp-0", 2), ("webapp-0", 3), ("webapp-1", 1)]
    books = found[("webapp-0", 2)]
    assert books.complete and books.status == 500 and books.success is False
    assert books.request_body is not None and books.response_body is not None
    assert found[("webapp-0", 1)].success is True and found[("webapp-0", 1)].latency_us == 9_132
    assert found[("webapp-0", 3)].success is False  # grpc-status Unavailable
    assert found[("webapp-1", 1)].success is False  # failed without a response
    assert [e.id for e in store.exchanges(last=2)] == [3, 1]


def test_drop_notices_are_counted_per_instance() -> None:
    store = TapStore()
    assert store.add(Dropped("a", 3, 1)) is None
    store.add(Dropped("a", 2, 0))
    store.add(Dropped("b", 0, 4))
    counts = {i.name: (i.queue_full, i.rate_limited) for i in store.instances()}
    assert counts == {"a": (5, 1), "b": (0, 4)}
    assert store.dropped == 10


def request(id: int, instance: str = "p") -> RequestInit:
    return RequestInit(instance, id, 0, "inbound", INGRESS, WEB, True, "GET", "a", "/", "")


def test_the_store_is_bounded_and_counts_evictions() -> None:
    store = TapStore(capacity=3)
    for n in range(10):
        store.add(request(n))
    assert [e.id for e in store.exchanges()] == [7, 8, 9]
    assert store.evicted == 7 and len(store) == 3


def test_instance_states_and_version() -> None:
    store = TapStore()
    version = store.version
    store.instance_state("a", "connecting")
    store.add(request(1, "a"))
    store.instance_state("b", "failed", "connection refused")
    states = {i.name: (i.state, i.reason, i.events) for i in store.instances()}
    assert states == {"a": ("streaming", "", 1), "b": ("failed", "connection refused", 0)}
    assert store.version == version + 3


def test_subscribers_see_each_event_until_they_leave() -> None:
    store = TapStore()
    seen: list[tuple[TapEvent, Exchange | None]] = []
    leave = store.subscribe(lambda event, exchange: seen.append((event, exchange)))
    store.add(request(1))
    leave()
    store.add(request(2))
    assert len(seen) == 1 and seen[0][1] is not None and seen[0][1].id == 1


def test_adding_from_many_threads_loses_nothing() -> None:
    store = TapStore(capacity=100_000)

    def feed(instance: str) -> None:
        for n in range(2_000):
            store.add(request(n, instance))

    threads = [threading.Thread(target=feed, args=(f"p{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(store) == 8_000 and store.version == 8_000
