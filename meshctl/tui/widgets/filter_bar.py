"""The filter bar (`/`): the expression language of `meshctl tap`'s flags, checked as it is applied.

A bad expression keeps the bar open with the parser's one-line message (which column, what was
expected) and its hint; the list keeps its current filter meanwhile.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label

from meshctl.errors import UsageError
from meshctl.tapping.filter import parse_filter
from meshctl.tapping.filter_syntax import HINT
from meshctl.tui.messages import FilterApplied, FilterClosed


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; }
    FilterBar.-open { display: block; }
    FilterBar > .filter-message { width: 1fr; height: auto; padding: 0 1; color: $text-muted; }
    FilterBar > .filter-message.-error { color: $error; }
    FilterBar > Input { border: tall $accent; }
    """
    BINDINGS = [Binding("escape", "close", "Cancel", show=False)]

    def __init__(self, namespace: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.namespace = namespace
        self.input = Input(placeholder="e.g. status=5xx or latency>=100ms", id="filter-input")
        self.message = Label(f"Filter: {HINT}. Enter applies, Esc cancels.", classes="filter-message")

    def compose(self) -> ComposeResult:
        yield self.message
        yield self.input

    def open(self, current: str) -> None:
        self.add_class("-open")
        self.message.remove_class("-error")
        self.message.update(f"Filter: {HINT}. Enter applies, Esc cancels.")
        self.input.value = current
        self.input.cursor_position = len(current)
        self.input.focus()

    def action_close(self) -> None:
        self.remove_class("-open")
        self.post_message(FilterClosed())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            keep = parse_filter(event.value, self.namespace)
        except UsageError as exc:
            self.message.add_class("-error")
            self.message.update(Text(f"{exc.message} — {exc.hint}" if exc.hint else exc.message))
            return
        self.remove_class("-open")
        self.post_message(FilterApplied(keep))
