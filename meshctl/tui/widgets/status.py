"""The status line: live or paused, what is shown, and every loss made visible — drops the proxies
reported, requests the bounded store let go, and each proxy's stream state.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from meshctl.tapping.store import InstanceState, TapStore
from meshctl.tui.model import RequestView

MAX_NAMED = 3  # proxies named on the line; the rest are counted


def instances_text(states: list[InstanceState]) -> Text:
    text = Text()
    if not states:
        return text.append("no proxy yet", style="dim")
    problems = [s for s in states if s.state in ("failed", "ended")]
    counts: dict[str, int] = {}
    for state in states:
        counts[state.state] = counts.get(state.state, 0) + 1
    text.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    for state in problems[:MAX_NAMED]:
        text.append(f" · {state.name} {state.state}", style="red" if state.state == "failed" else "yellow")
        if state.reason:
            text.append(f": {state.reason}", style="red" if state.state == "failed" else "yellow")
    if len(problems) > MAX_NAMED:
        text.append(f" · {len(problems) - MAX_NAMED} more")
    return text


def status_text(view: RequestView, store: TapStore, *, follow: bool, ended: bool = False) -> Text:
    text = Text()
    if ended:
        text.append(" ENDED ", style="bold reverse")
    elif not view.paused:
        text.append(" LIVE ", style="bold reverse green")
    if view.paused:
        text.append(" PAUSED ", style="bold reverse yellow")
        text.append(f" {view.waiting} changed requests waiting ", style="yellow")
    else:
        text.append(" follow " if follow else " ", style="green")
    text.append(f" {len(view.rows)} shown · {len(store)} kept")
    if store.evicted:
        text.append(f" · {store.evicted} let go (store full)", style="yellow")
    states = store.instances()
    queue_full = sum(s.queue_full for s in states)
    rate_limited = sum(s.rate_limited for s in states)
    drops = queue_full + rate_limited
    text.append(f" · drops {drops}", style="bold red" if drops else "")
    if drops:
        text.append(f" ({queue_full} slow reader, {rate_limited} rate limit)", style="red")
    text.append(" · proxies: ")
    text.append_text(instances_text(states))
    return text


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 3; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._text = Text()

    def show(self, text: Text) -> None:
        if text != self._text:  # redraw only what changed
            self._text = text
            self.update(text)
