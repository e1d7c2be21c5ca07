"""What the TUI shows, kept apart from Textual so it can be tested (and reasoned about) on its own.

The store's subscriber runs on the thread that adds events, possibly thousands of times a second: it
only notes which exchanges changed. `RequestView.refresh()` runs once per frame on the UI thread and
folds those changes into the shown rows, the top table and the latency per route. Everything here is
bounded: rows by `limit`, pending changes by `limit` (past it, the next refresh rebuilds from the store),
routes by MAX_ROUTES, latency samples by SAMPLES.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from meshctl.tapping.events import ResponseEnd, TapEvent
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter import Filter
from meshctl.tapping.store import TapStore
from meshctl.tapping.top import TopTable, endpoint_name

Key = tuple[str, int]
MAX_ROUTES = 24  # charts beyond this many routes would not fit a screen anyway
SAMPLES = 60  # latencies kept per route: the chart's width


@dataclass
class RouteLatency:
    """The latest latencies (µs) of one destination's route, oldest first."""

    destination: str
    route: str
    samples: deque[int] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    count: int = 0

    @property
    def name(self) -> str:
        return f"{self.destination} {self.route}"

    def percentile(self, q: float) -> int:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


class RouteCharts:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], RouteLatency] = {}
        self.untracked = 0  # ended requests of routes past MAX_ROUTES

    def add(self, exchange: Exchange) -> None:
        request, end = exchange.request, exchange.end
        if request is None or end is None:
            return
        key = (endpoint_name(request.destination), request.route or "[DEFAULT]")
        route = self.routes.get(key)
        if route is None:
            if len(self.routes) >= MAX_ROUTES:
                self.untracked += 1
                return
            route = self.routes[key] = RouteLatency(*key)
        route.samples.append(end.since_request_init_us)
        route.count += 1

    def ordered(self) -> list[RouteLatency]:
        return sorted(self.routes.values(), key=lambda r: (-r.count, r.name))


class RequestView:
    """The filtered, bounded list of requests a user sees, with its top table and latency charts."""

    def __init__(self, store: TapStore, keep: Filter | None = None, *, limit: int | None = None) -> None:
        self.store = store
        self.keep = keep or Filter(None)
        self.limit = limit or store.capacity
        self.rows: list[Exchange] = []
        self.top = TopTable()
        self.charts = RouteCharts()
        self.paused = False
        self.trimmed = 0  # rows pushed off the front since the last rebuild (the list's cursor follows)
        self.generation = 0  # bumped by every rebuild: the rows are new, positions mean nothing
        self._shown: set[Key] = set()
        self._lock = threading.Lock()
        self._pending: dict[Key, tuple[Exchange, bool]] = {}
        self._overflow = True  # the first refresh reads what the store holds already
        self.dirty = True
        self._unsubscribe = store.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    # -- the adding thread: note, never render ---------------------------------------------------------
    def _on_event(self, event: TapEvent, exchange: Exchange | None) -> None:
        if exchange is not None:
            key = (exchange.instance, exchange.id)
            with self._lock:
                if key in self._pending or len(self._pending) < self.limit:
                    ended = isinstance(event, ResponseEnd) or self._pending.get(key, (exchange, False))[1]
                    self._pending[key] = (exchange, ended)
                else:
                    self._overflow = True
        self.dirty = True

    @property
    def waiting(self) -> int:
        """Changed requests not shown yet (while paused)."""
        return len(self._pending)

    # -- the UI thread, once a frame --------------------------------------------------------------------
    def set_filter(self, keep: Filter) -> None:
        self.keep = keep
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute everything from the store (filter change, clear, or too many changes to replay)."""
        with self._lock:
            self._pending.clear()
            self._overflow = False
        shown = [e for e in self.store.exchanges() if self.keep.decide(e) is True]
        self.rows = shown[-self.limit :]
        self._shown = {(e.instance, e.id) for e in self.rows}
        self.top, self.charts = TopTable(), RouteCharts()
        for exchange in shown:
            if exchange.end is not None:
                self.top.add(exchange)
                self.charts.add(exchange)
        self.trimmed = 0
        self.generation += 1
        self.dirty = True

    def refresh(self) -> bool:
        """Fold the changes since the last frame in; True when the rows or counts changed."""
        if self.paused:
            return False
        self.dirty = False
        with self._lock:
            pending, self._pending = self._pending, {}
            overflow, self._overflow = self._overflow, False
        if overflow:
            self.rebuild()
            self.dirty = False
            return True
        if not pending:
            return False
        for exchange, ended in sorted(pending.values(), key=lambda item: item[0].seq):
            # Shown once the filter says yes for sure: a status or latency term waits for the end, so
            # rows never appear and then vanish.
            if self.keep.decide(exchange) is not True:
                continue
            key = (exchange.instance, exchange.id)
            if key not in self._shown:
                self._shown.add(key)
                self.rows.append(exchange)
            if ended:
                self.top.add(exchange)
                self.charts.add(exchange)
        excess = len(self.rows) - self.limit
        if excess > 0:
            for gone in self.rows[:excess]:
                self._shown.discard((gone.instance, gone.id))
            del self.rows[:excess]
            self.trimmed += excess
        return True

    def pause(self, paused: bool) -> None:
        self.paused = paused
        self.dirty = True
