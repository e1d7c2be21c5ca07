"""The tap TUI: a live request list with detail, filter, pause/follow, top paths, latency per route,
export and a drop counter, over a TapStore that something else fills.

However fast events arrive, the screen is redrawn at most once a frame: the store's subscriber only
notes what changed (model.RequestView), and a timer at FRAME_HZ folds that in and refreshes the one
visible view. The stream that fills the store runs on a thread of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Footer, Static

from meshctl.errors import MeshError
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter import Filter
from meshctl.tapping.store import TapStore
from meshctl.tui.export import export
from meshctl.tui.messages import FilterApplied, FilterClosed
from meshctl.tui.model import RequestView
from meshctl.tui.screens import ExportScreen, HelpScreen
from meshctl.tui.widgets.detail import DetailPane
from meshctl.tui.widgets.filter_bar import FilterBar
from meshctl.tui.widgets.request_list import RequestList, header
from meshctl.tui.widgets.status import StatusBar, status_text
from meshctl.tui.widgets.top import TopPane

FRAME_HZ = 15
Stream = Callable[[], object]


class ListHeader(Widget):
    DEFAULT_CSS = "ListHeader { height: 1; background: $panel; }"

    def render(self) -> Text:
        return header(self.size.width)


class TapApp(App[None]):
    TITLE = "meshctl tap"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #title { height: 1; background: $primary; color: $text; padding: 0 1; }
    #list { height: 1fr; }
    ContentSwitcher { height: 1fr; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("space", "pause", "Pause"),
        Binding("enter", "detail", "Detail"),
        Binding("t", "top", "Top"),
        Binding("e", "export", "Export"),
        Binding("f", "follow", "Follow"),
        Binding("z", "clear", "Clear", show=False),
        Binding("escape", "list", "Back"),
    ]

    def __init__(
        self,
        store: TapStore,
        *,
        keep: Filter | None = None,
        target: str = "",
        match: str = "",
        namespace: str = "default",
        start_stream: Stream | None = None,
        stop_stream: Callable[[], None] | None = None,
        summary: Callable[[], str] | None = None,
        frame_hz: float = FRAME_HZ,
    ) -> None:
        super().__init__()
        self.store = store
        self.view = RequestView(store, keep)
        self.target, self.match, self.namespace = target, match, namespace
        self.frame_hz = frame_hz
        self._start_stream, self._stop_stream, self._summary = start_stream, stop_stream, summary
        self._stream_thread: threading.Thread | None = None
        self.stream_ended = start_stream is None  # a store filled beforehand (a replay) is complete
        self.requests = RequestList(self.view, id="requests")
        self.detail = DetailPane(id="detail")
        self.top = TopPane(self.view, id="top")
        self.filter_bar = FilterBar(namespace, id="filter")
        self.status = StatusBar(id="status")
        self.title_bar = Static("", id="title")
        self.switcher = ContentSwitcher(initial="list")

    # -- layout and lifetime ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self.title_bar
        with self.switcher:
            with Vertical(id="list"):
                yield ListHeader()
                yield self.requests
            yield self.detail
            yield self.top
        yield self.filter_bar
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        self._show_title()
        self.requests.focus()
        self.frame()
        self.set_interval(1 / self.frame_hz, self.frame, name="frame")
        if self._start_stream is not None:
            self._stream_thread = threading.Thread(target=self._stream, name="tap stream", daemon=True)
            self._stream_thread.start()

    def _stream(self) -> None:
        assert self._start_stream is not None
        message, severity = "no proxy streams any more (or --duration passed); what came stays", "information"
        try:
            self._start_stream()
        except MeshError as exc:  # the stream's own errors: one line, the TUI stays to show what came
            message, severity = (f"{exc.message} — {exc.hint}" if exc.hint else exc.message), "error"
        self.stream_ended = True
        if self._stop_stream is not None:  # ended by itself, not by quitting
            self.call_from_thread(self.notify, message, title="tap ended", severity=severity, timeout=30, markup=False)

    def _end_stream(self) -> None:
        if self._stop_stream is not None:
            stop, self._stop_stream = self._stop_stream, None
            stop()
        if self._stream_thread is not None:  # a daemon: a stream blocked on a silent proxy must not hold the exit
            self._stream_thread.join(timeout=0.5)

    async def action_quit(self) -> None:
        # The summary is printed by Textual once the terminal is restored, so it stays on the screen.
        self._end_stream()
        self.exit(message=Text(self._summary()) if self._summary is not None else None)

    def on_unmount(self) -> None:
        self.view.close()
        self._end_stream()

    def _show_title(self) -> None:
        text = Text.assemble(("meshctl tap", "bold"), f" {self.target}" if self.target else "")
        if self.match:
            text.append(f" · proxy match: {self.match}")
        text.append(" · filter: ")
        text.append(self.view.keep.text or "(none)", style="bold" if self.view.keep.text else "dim")
        self.title_bar.update(text)

    @property
    def mode(self) -> str:
        return self.switcher.current or "list"

    def _switch(self, mode: str) -> None:
        self.switcher.current = mode
        {"list": self.requests, "detail": self.detail, "top": self.top.table}[mode].focus()
        self.frame(force=True)

    # -- the frame: the one place the screen follows the data -----------------------------------------
    def frame(self, force: bool = False) -> None:
        changed = self.view.refresh()
        if changed or force:
            self.requests.sync()
            if self.mode == "top":
                self.top.update()
        if self.mode == "detail":
            self.detail.show(self.requests.selected)
        # Counts and proxy states change without a row changing; the bar redraws only when its text does.
        self.status.show(status_text(self.view, self.store, follow=self.requests.follow, ended=self.stream_ended))

    # -- keys ------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        self.filter_bar.open(self.view.keep.text)

    def on_filter_applied(self, message: FilterApplied) -> None:
        self.view.set_filter(message.keep)
        self._show_title()
        self._switch(self.mode)

    def on_filter_closed(self, _: FilterClosed) -> None:
        self._switch(self.mode)

    def action_pause(self) -> None:
        self.view.pause(not self.view.paused)
        self.frame(force=True)

    def action_detail(self) -> None:
        if self.mode != "detail":
            self.requests.follow = False  # the request being read stays selected while new ones arrive
        self._switch("list" if self.mode == "detail" else "detail")

    def action_top(self) -> None:
        self._switch("list" if self.mode == "top" else "top")

    def action_list(self) -> None:
        if self.mode != "list":
            self._switch("list")

    def action_follow(self) -> None:
        self.requests.follow = not self.requests.follow
        if self.requests.follow:
            self.requests.action_last()
        self.frame(force=True)

    def action_clear(self) -> None:
        self.store.clear()
        self.view.rebuild()
        self.frame(force=True)

    def action_export(self) -> None:
        rows = list(self.view.rows)  # what is shown now, even if more arrives while the dialog is open
        self.push_screen(ExportScreen(len(rows)), lambda path: self._export(path, rows))

    def _export(self, path: Path | None, rows: list[Exchange]) -> None:
        if path is None:
            return
        try:
            kind, count = export(path, rows)
        except MeshError as exc:
            message = f"{exc.message} — {exc.hint}" if exc.hint else exc.message
            self.notify(message, title="export failed", severity="error", timeout=10, markup=False)
            return
        self.notify(f"wrote {count} requests to {path} ({kind})", title="export", markup=False)


def run_tui(
    store: TapStore,
    start_stream: Stream | None = None,
    *,
    stop_stream: Callable[[], None] | None = None,
    summary: Callable[[], str] | None = None,
    keep: Filter | None = None,
    target: str = "",
    match: str = "",
    namespace: str = "default",
) -> None:
    """Run the TUI until the user quits. `start_stream` runs on its own thread and fills `store` (a live
    tap or a replay); `stop_stream` is called on quit to end it, then `summary()` is printed on stderr
    below the restored screen. `keep` is the initial view filter, `match` the expression the proxies were
    asked for (shown in the title)."""
    TapApp(store, keep=keep, target=target, match=match, namespace=namespace, start_stream=start_stream,
           stop_stream=stop_stream, summary=summary).run()  # fmt: skip
