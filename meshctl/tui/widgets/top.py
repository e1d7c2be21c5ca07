"""The top view: the busiest paths (Linkerd's `top` table) and a latency chart per route.

Charts show each route's latest requests, one bar per request (newest on the right), with p50/p99/max
of those beside it, so a slow route stands out at a glance.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Sparkline

from meshctl.tapping.top import COLUMNS, TopRow, human_us
from meshctl.tui.model import SAMPLES, RequestView, RouteLatency

TOP_ROWS = 40


def row_cells(row: TopRow) -> tuple[str, ...]:
    return (row.source, row.destination, row.method, row.path, str(row.count), human_us(row.best_us),
            human_us(row.worst_us), human_us(row.last_us), f"{row.success_rate * 100:.2f}%")  # fmt: skip


def stats(route: RouteLatency) -> str:
    return (f"p50 {human_us(route.percentile(0.5)):>7}  p99 {human_us(route.percentile(0.99)):>7}  "
            f"max {human_us(max(route.samples, default=0)):>7}  n={route.count}")  # fmt: skip


class RouteChart(Horizontal):
    DEFAULT_CSS = """
    RouteChart { height: 1; }
    RouteChart > .route-name { width: 32; }
    RouteChart > Sparkline { width: 1fr; min-width: 10; max-width: 60; }
    RouteChart > .route-stats { width: auto; padding: 0 1; }
    """

    def __init__(self, route: RouteLatency) -> None:
        super().__init__()
        self.route = route
        self._label = Label(Text(route.name), classes="route-name")
        self._chart = Sparkline(list(route.samples))
        self._stats = Label(stats(route), classes="route-stats")

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._chart
        yield self._stats

    def update(self) -> None:
        samples = list(self.route.samples)
        if samples != self._chart.data:
            self._chart.data = samples
            self._stats.update(stats(self.route))


class TopPane(Vertical):
    DEFAULT_CSS = """
    TopPane > DataTable { height: 2fr; }
    TopPane > .charts-title { height: 1; margin-top: 1; text-style: bold; }
    TopPane > VerticalScroll { height: 1fr; }
    """

    def __init__(self, view: RequestView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
        self.charts = VerticalScroll()
        self._rows: list[tuple[str, ...]] = []
        self._charts: dict[tuple[str, str], RouteChart] = {}
        self._top: object = None

    def compose(self) -> ComposeResult:
        yield self.table
        yield Label(f"Latency per route (last {SAMPLES} requests each)", classes="charts-title")
        yield self.charts

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.table.add_column(column, key=column)

    def update(self) -> None:
        """Redraw from the model (called once a frame while the view is visible)."""
        rows = [row_cells(r) for r in self.view.top.rows(TOP_ROWS)]
        if rows != self._rows or self._top is not self.view.top:
            self._rows, self._top = rows, self.view.top
            self.table.clear()
            self.table.add_rows(rows)
        routes = self.view.charts.ordered()
        if {(r.destination, r.route) for r in routes} != set(self._charts):
            self.charts.remove_children()
            self._charts = {(r.destination, r.route): RouteChart(r) for r in routes}
            self.charts.mount_all(self._charts.values())
        for chart in self._charts.values():
            chart.update()
