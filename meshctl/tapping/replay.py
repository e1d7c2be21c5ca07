"""Offline filtering of a capture that behaves as the proxy does live: a request whose match depends
on its response is held until its end and then released whole, so replaying a capture through the
same filters prints the lines the live run printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from meshctl.tapping.events import Dropped, TapEvent
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter import Filter
from meshctl.tapping.store import TapStore


class Replayer:
    def __init__(self, keep: Filter, store: TapStore | None = None) -> None:
        self.keep = keep
        self.store = store or TapStore()
        self._held: dict[tuple[str, int], list[TapEvent]] = {}
        self._passed: set[tuple[str, int]] = set()

    def feed(self, event: TapEvent) -> list[tuple[TapEvent, Exchange | None]]:
        """The events to show now (with their exchange), in order."""
        if isinstance(event, Dropped):
            return [(event, self.store.add(event))]
        key = (event.instance, event.id)
        if key in self._passed:
            return [(event, self.store.add(event))]
        held = self._held.setdefault(key, [])
        held.append(event)
        probe = Exchange(event.instance, event.id, 0)
        for each in held:
            _apply(probe, each)
        verdict = self.keep.decide(probe)
        if verdict is None and probe.end is None:
            return []
        del self._held[key]
        if not verdict:
            return []
        self._passed.add(key)
        return [(each, self.store.add(each)) for each in held]

    def run(self, events: Iterable[TapEvent]) -> Iterator[tuple[TapEvent, Exchange | None]]:
        for event in events:
            yield from self.feed(event)


def _apply(exchange: Exchange, event: TapEvent) -> None:
    from meshctl.tapping.events import BodyChunk, RequestInit, ResponseEnd, ResponseInit

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
