"""Deterministic tap events for the TUI tests: the tapping scenario (every event kind) plus a steady
mix of routes, statuses and latencies with fixed times and ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshctl.tapping.events import INBOUND, OUTBOUND, Endpoint, RequestInit, ResponseEnd, ResponseInit, TapEvent
from meshctl.tapping.store import TapStore
from tests.unit.tapping.scenario import BOOKS, INGRESS, T0, WEB, WEB_OUT, scenario

AUTHORS = Endpoint("127.77.2.1:4143", "authors.booksapp.serviceaccount.identity.meshctl.cluster.local", "authors",
                   "booksapp")  # fmt: skip
# (direction, source, destination, method, path, route, status, latency µs)
SHAPES = (
    (INBOUND, INGRESS, WEB, "GET", "/books", "GET /books", 200, 4_200),
    (OUTBOUND, WEB_OUT, BOOKS, "GET", "/books.json", "GET /books.json", 200, 2_100),
    (OUTBOUND, WEB_OUT, AUTHORS, "GET", "/authors/7.json", "GET /authors/{id}.json", 200, 1_700),
    (INBOUND, INGRESS, WEB, "POST", "/books/new", "POST /books/new", 503, 120_000),
    (OUTBOUND, WEB_OUT, BOOKS, "DELETE", "/books/3.json", "", 404, 900),
)


def request_events(instance: str, id: int, shape: int, at_us: int) -> list[TapEvent]:
    direction, source, destination, method, path, route, status, latency = SHAPES[shape % len(SHAPES)]
    latency += (id * 37) % 800  # a little spread, still fixed
    return [
        RequestInit(instance, id, at_us, direction, source, destination, True, method,
                    f"{destination.workload}.booksapp.svc.cluster.local", path, route, (("accept", "*/*"),)),
        ResponseInit(instance, id, at_us + latency // 2, latency // 2, status, (("content-type", "text/plain"),)),
        ResponseEnd(instance, id, at_us + latency, latency, latency // 2, 0, 120 + id),
    ]  # fmt: skip


def steady(count: int, *, instance: str = "webapp-0", first_id: int = 100, start_us: int = T0 + 2_000_000) -> Iterator[
    TapEvent
]:
    for n in range(count):
        yield from request_events(instance, first_id + n, n, start_us + n * 10_000)


def filled_store(count: int = 30, capacity: int = 10_000) -> TapStore:
    """The scenario, then `count` steady requests; instance states as a live tap would leave them."""
    store = TapStore(capacity=capacity)
    store.instance_state("webapp-0", "streaming")
    store.instance_state("webapp-1", "streaming")
    store.instance_state("webapp-2", "failed", "cannot connect to 127.77.1.3:4191: Connection refused")
    for event in scenario():
        store.add(event)
    for event in steady(count):
        store.add(event)
    return store
