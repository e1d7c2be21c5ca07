"""The live request list: one line per request, drawn only for the rows on screen.

A line-API widget (as toolong's log view): the rows are the model's list of exchanges, so 10,000 rows
cost nothing until they scroll into view, and a new row is an append, not a widget. The cursor follows
the newest row until the user moves it (mitmproxy's follow), and stays on its request when old rows
are pushed off the front.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from meshctl.tapping.events import INBOUND, Endpoint
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.render import grpc_name
from meshctl.tapping.top import endpoint_name, human_us
from meshctl.tui.model import RequestView

# (title, width); the path column takes what is left
COLUMNS = (("Time", 12), ("Dir", 3), ("Source", 14), ("Destination", 14), ("Method", 6), ("Path", 0),
           ("Status", 6), ("Latency", 8), ("Identity", 22))  # fmt: skip
MIN_PATH = 12
FAILED = Style(color="red", bold=True)
WARNED = Style(color="yellow")
PENDING = Style(dim=True)


def clock(timestamp_us: int) -> str:
    """HH:MM:SS.mmm in UTC, as the JSON lines and HAR files say it."""
    return datetime.fromtimestamp(timestamp_us / 1e6, UTC).strftime("%H:%M:%S.%f")[:-3]


def short_identity(identity: str) -> str:
    """`name.namespace` of a mesh identity (`name.namespace.serviceaccount.identity…`); '-' without mTLS."""
    if not identity:
        return "-"
    parts = identity.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[2] == "serviceaccount" else identity


def peer(exchange: Exchange) -> Endpoint | None:
    """The other side of the proxy: the client of an inbound request, the server of an outbound one."""
    request = exchange.request
    if request is None:
        return None
    return request.source if request.direction == INBOUND else request.destination


def status_cell(exchange: Exchange) -> tuple[str, Style]:
    end = exchange.end
    if end is None:
        return (str(exchange.status) if exchange.status is not None else "…"), PENDING
    if not end.response_started:
        return "ERR", FAILED
    text = str(exchange.status) if exchange.status is not None else "-"
    if end.grpc_status is not None and end.grpc_status != 0:
        text = grpc_name(end.grpc_status)[:6]
    if exchange.success is False:
        return text, FAILED
    return text, WARNED if exchange.status is not None and exchange.status >= 400 else Style()


def cells(exchange: Exchange) -> list[tuple[str, Style]]:
    """The cells of one row, in COLUMNS order."""
    request = exchange.request
    status = status_cell(exchange)
    latency = exchange.latency_us
    latency_cell = (human_us(latency), Style()) if latency is not None else ("…", PENDING)
    if request is None:  # the request init was dropped or evicted: show what is known
        return [("", Style())] * 6 + [status, latency_cell, ("", Style())]
    other = peer(exchange)
    return [
        (clock(request.timestamp_us), Style(dim=True)),
        ("in" if request.direction == INBOUND else "out", Style()),
        (endpoint_name(request.source), Style()),
        (endpoint_name(request.destination), Style()),
        (request.method, Style(bold=True)),
        (request.path, Style()),
        status,
        latency_cell,
        (short_identity(other.identity if other is not None else ""), Style(dim=not request.tls)),
    ]


DROP_ORDER = ("Identity", "Dir", "Time")  # left out, in this order, when the terminal is narrow


def layout(total: int) -> list[tuple[int, int]]:
    """(column index, width) of the columns that fit `total` cells; the path takes what is left."""
    shown = list(range(len(COLUMNS)))

    def fixed() -> int:
        return sum(COLUMNS[i][1] for i in shown) + len(shown) - 1

    for name in DROP_ORDER:
        if fixed() + MIN_PATH <= total:
            break
        shown.remove(next(i for i, (title, _) in enumerate(COLUMNS) if title == name))
    return [(i, COLUMNS[i][1] or max(MIN_PATH, total - fixed())) for i in shown]


def line(values: list[tuple[str, Style]], total: int) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for n, (index, width) in enumerate(layout(total)):
        value, style = values[index]
        if len(value) > width:
            value = value[: width - 1] + "…"
        right = COLUMNS[index][0] in ("Status", "Latency")
        if n:
            text.append(" ")
        text.append(value.rjust(width) if right else value.ljust(width), style)
    return text


def header(total: int) -> Text:
    return line([(title, Style(bold=True)) for title, _ in COLUMNS], total)


class RequestList(ScrollView, can_focus=True):
    """Rows of `view.rows`; call `sync()` after each `view.refresh()`."""

    COMPONENT_CLASSES = {"request-list--cursor"}
    DEFAULT_CSS = """
    RequestList { height: 1fr; overflow-x: hidden; }
    RequestList > .request-list--cursor { background: $accent 30%; }
    RequestList:focus > .request-list--cursor { background: $accent 60%; }
    """
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last (follow)", show=False),
    ]

    def __init__(self, view: RequestView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.cursor = -1
        self.follow = True
        self._trimmed = 0
        self._generation = -1
        self._styles = (Style(), Style())
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(maxsize=256)

    @property
    def selected(self) -> Exchange | None:
        rows = self.view.rows
        return rows[self.cursor] if 0 <= self.cursor < len(rows) else None

    def sync(self) -> None:
        """Take in the rows as the model has them now (once a frame)."""
        rows = self.view.rows
        before = self.selected
        if self.view.generation != self._generation:
            self._generation, self._trimmed = self.view.generation, 0
            self.cursor = len(rows) - 1 if self.follow or before is None else self._index_of(before)
        elif self.view.trimmed != self._trimmed:
            self.cursor -= self.view.trimmed - self._trimmed
            self._trimmed = self.view.trimmed
        if self.follow:
            self.cursor = len(rows) - 1
        self.cursor = min(max(self.cursor, 0 if rows else -1), len(rows) - 1)
        self._fit()
        self.refresh()

    def _index_of(self, exchange: Exchange) -> int:
        for index in range(len(self.view.rows) - 1, -1, -1):
            if self.view.rows[index] is exchange:
                return index
        return len(self.view.rows) - 1

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles once per redraw, not once per line.
        self._styles = (self.rich_style, self.rich_style + self.get_component_rich_style("request-list--cursor"))
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.size.width
        rows = self.view.rows
        base, cursor = self._styles
        if not 0 <= index < len(rows):
            return Strip.blank(width, base)
        exchange = rows[index]
        style = cursor if index == self.cursor else base
        # A row changes only when its response starts or ends: following the newest rows mostly
        # shifts lines already drawn, so they come from the cache.
        key = (exchange, exchange.response, exchange.end, width, style)
        strip = self._strips.get(key)
        if strip is None:
            text = line(cells(exchange), width)
            segments = [Segment(s.text, style + s.style if s.style else style) for s in text.render(self.app.console)]
            strip = self._strips[key] = Strip(segments).adjust_cell_length(width, style)
        return strip

    # -- keys -----------------------------------------------------------------------------------------
    def _go(self, index: int) -> None:
        rows = self.view.rows
        if not rows:
            return
        self.cursor = min(max(index, 0), len(rows) - 1)
        self.follow = self.cursor == len(rows) - 1 and self.follow
        top, height = self.scroll_offset.y, self.size.height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self.refresh()

    def action_move(self, delta: int) -> None:
        self.follow = False
        self._go(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.follow = False
        self._go(self.cursor + direction * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self.follow = False
        self._go(0)

    def action_last(self) -> None:
        self.follow = True
        self._go(len(self.view.rows) - 1)

    def _fit(self) -> None:
        """Size the scroll area to the rows; when following, show the newest."""
        self.virtual_size = Size(self.size.width, len(self.view.rows))
        if self.follow:
            self.scroll_to(y=max(0, len(self.view.rows) - self.size.height), animate=False, immediate=True)

    def on_resize(self) -> None:
        self._fit()
