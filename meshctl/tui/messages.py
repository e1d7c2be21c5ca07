"""Messages between the TUI's widgets and the app."""

from __future__ import annotations

from textual.message import Message

from meshctl.tapping.filter import Filter


class FilterApplied(Message):
    """The filter bar parsed a new expression (an empty one shows everything)."""

    def __init__(self, keep: Filter) -> None:
        super().__init__()
        self.keep = keep


class FilterClosed(Message):
    """The filter bar was left without a change."""
