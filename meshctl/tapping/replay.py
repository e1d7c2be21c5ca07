"""Offline filtering of a capture: the events of every exchange the filter keeps, in capture order.

Each exchange is judged on everything the capture holds about it (two passes), so a filter on the
response (status, latency) keeps or drops a request's line as well as its end. An exchange the capture
cut short, whose verdict depends on what never arrived, is kept: live, the proxy sent it only because
it matched. So a capture replayed through the filters it was taken with prints exactly the live lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from meshctl.tapping.events import Dropped, TapEvent
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter import Filter
from meshctl.tapping.store import TapStore


def replay(
    events: Iterable[TapEvent], keep: Filter, store: TapStore | None = None
) -> Iterator[tuple[TapEvent, Exchange | None]]:
    """(event, its exchange in `store`) for each event to show."""
    captured = list(events)
    judge = TapStore(capacity=max(1, len(captured)))
    for event in captured:
        judge.add(event)
    kept = {(x.instance, x.id) for x in judge.exchanges(keep)}
    shown = store if store is not None else TapStore()
    for event in captured:
        if isinstance(event, Dropped) or (event.instance, event.id) in kept:
            yield event, shown.add(event)
