"""TapStore: a bounded, thread-safe record of tapped requests that a UI or a command reads.

Events from any number of proxies go in through `add` (from any thread); the store pairs them into
Exchanges by (instance, id), keeps the newest `capacity` ones and counts what it evicted. Losses are
counted where they happen — `dropped` (reported by proxies: slow reader or rate limit) and `evicted`
(pushed out here) — so a UI can show both. A UI polls `version` once per frame, or subscribes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from meshctl.tapping.events import BodyChunk, Dropped, RequestInit, ResponseEnd, ResponseInit, TapEvent
from meshctl.tapping.exchange import Exchange

DEFAULT_CAPACITY = 10_000

Listener = Callable[[TapEvent, "Exchange | None"], None]


@dataclass
class InstanceState:
    """What the store knows about one tapped proxy."""

    name: str
    state: str = "connecting"  # connecting | streaming | failed | ended
    reason: str = ""  # why it failed or ended
    events: int = 0
    queue_full: int = 0  # requests the proxy dropped because we read too slowly
    rate_limited: int = 0  # requests over our limit

    @property
    def dropped(self) -> int:
        return self.queue_full + self.rate_limited


class TapStore:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._exchanges: OrderedDict[tuple[str, int], Exchange] = OrderedDict()
        self._instances: dict[str, InstanceState] = {}
        self._listeners: list[Listener] = []
        self._seq = 0
        self.evicted = 0
        self.version = 0  # bumped on every change

    # -- writing ---------------------------------------------------------------------------------------
    def add(self, event: TapEvent) -> Exchange | None:
        """Record one event; returns the exchange it belongs to (None for a drop notice)."""
        with self._lock:
            exchange = self._record(event)
            self.version += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event, exchange)
        return exchange

    def _record(self, event: TapEvent) -> Exchange | None:
        instance = self._instance(event.instance)
        instance.events += 1
        if instance.state == "connecting":
            instance.state = "streaming"
        if isinstance(event, Dropped):
            instance.queue_full += event.queue_full
            instance.rate_limited += event.rate_limited
            return None
        key = (event.instance, event.id)
        exchange = self._exchanges.get(key)
        if exchange is None:
            self._seq += 1
            exchange = self._exchanges[key] = Exchange(event.instance, event.id, self._seq)
            while len(self._exchanges) > self.capacity:
                self._exchanges.popitem(last=False)
                self.evicted += 1
        if isinstance(event, RequestInit):
            exchange.request = event
        elif isinstance(event, ResponseInit):
            exchange.response = event
        elif isinstance(event, ResponseEnd):
            exchange.end = event
        elif isinstance(event, BodyChunk):
            if event.request:
                exchange.request_body = event
            else:
                exchange.response_body = event
        return exchange

    def instance_state(self, name: str, state: str, reason: str = "") -> None:
        """Note a proxy's stream state (connecting, streaming, failed, ended) and why."""
        with self._lock:
            instance = self._instance(name)
            instance.state, instance.reason = state, reason
            self.version += 1

    def _instance(self, name: str) -> InstanceState:
        found = self._instances.get(name)
        if found is None:
            found = self._instances[name] = InstanceState(name)
        return found

    def clear(self) -> None:
        """Forget the exchanges (counters and instance states stay)."""
        with self._lock:
            self._exchanges.clear()
            self.version += 1

    # -- reading ---------------------------------------------------------------------------------------
    def exchanges(self, keep: Callable[[Exchange], bool] | None = None, *, last: int | None = None) -> list[Exchange]:
        """The kept exchanges in arrival order (the newest `last` of those `keep` accepts)."""
        with self._lock:
            found = list(self._exchanges.values())
        if keep is not None:
            found = [e for e in found if keep(e)]
        return found[-last:] if last is not None else found

    def get(self, instance: str, id: int) -> Exchange | None:
        with self._lock:
            return self._exchanges.get((instance, id))

    def __len__(self) -> int:
        return len(self._exchanges)

    def __bool__(self) -> bool:
        return True  # a store is a thing, not a collection: `store or other` must never drop an empty one

    def instances(self) -> list[InstanceState]:
        with self._lock:
            return [InstanceState(**vars(i)) for i in self._instances.values()]

    @property
    def dropped(self) -> int:
        with self._lock:
            return sum(i.dropped for i in self._instances.values())

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event, exchange)` after each add (on the adding thread); returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
