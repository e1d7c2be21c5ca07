"""The two dialogs: help (`?`) and export (`e`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

# (keys, what they do): k9s and mitmproxy users find theirs
KEYS = (
    ("/", "filter: the language of the flags (status=5xx or latency>=100ms); empty shows all"),
    ("space", "pause or resume the list (the store keeps collecting)"),
    ("enter", "detail of the selected request: headers, identities, TLS, timings, bodies"),
    ("t", "top paths and latency per route"),
    ("e", "export the shown requests (name.jsonl: JSON lines, name.har: HAR 1.2)"),
    ("f / G, end", "follow the newest request"),
    ("↑↓ j k, pgup pgdn, g", "move; moving up stops following"),
    ("z", "clear the list (drop and proxy counters stay)"),
    ("esc", "back to the list, or close a dialog"),
    ("?", "this help"),
    ("q, ctrl+c", "quit"),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 96; height: auto; border: thick $accent; padding: 1 2;
                            background: $surface; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in KEYS:
            table.add_row(keys, what)
        with Vertical():
            yield Label("[b]meshctl tap — keys[/b]")
            yield Static(table)
            yield Label("[dim]esc, q or ? closes[/dim]")


def default_export_name() -> str:
    return datetime.now(UTC).strftime("tap-%Y%m%d-%H%M%S.jsonl")


class ExportScreen(ModalScreen[Path | None]):
    """Asks where to write; dismissed with the path, or None when cancelled."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 80; height: auto; border: thick $accent; padding: 1 2; background: $surface; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, shown: int, name: str | None = None) -> None:
        super().__init__()
        self.shown = shown
        self.input = Input(name or default_export_name(), id="export-path")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]Export the {self.shown} shown requests[/b]")
            yield Label("A name ending in .har writes HAR 1.2; any other, JSON lines (replay: tap --input-file).")
            yield self.input
            yield Label("[dim]enter writes, esc cancels[/dim]")

    def on_mount(self) -> None:
        self.input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
