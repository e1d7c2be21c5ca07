"""Renderers of RoutesReport and StatReport: aligned tables (table, wide) and JSON documents.

Pure functions of a report: no I/O, no rich, no clock, so golden files pin their bytes. Colour comes from
the one palette (meshctl.cli.style), only when the caller says so. JSON numbers are numbers; no traffic is null.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshctl.cli.style import Palette, Tone
from meshctl.observe.models import DEFAULT_ROUTE, Counts, Latency, RouteRow, RoutesReport, StatReport, WorkloadRow
from meshctl.observe.window import format_duration

NO_VALUE = "-"
NOT_IN_PROFILE = "*"  # marks a route seen in the window that the current ServiceProfile no longer names

# Success-rate thresholds of the colours: green from GOOD, yellow from FAIR, red below.
GOOD = 0.99
FAIR = 0.95


# --- cells ------------------------------------------------------------------------------------------


def success_cell(counts: Counts) -> str:
    rate = counts.success_rate
    return NO_VALUE if rate is None else f"{rate * 100:.2f}%"


def rps_cell(counts: Counts, window_s: float) -> str:
    return NO_VALUE if counts.total <= 0 else f"{counts.rps(window_s):.2f}rps"


def latency_cell(value: float | None) -> str:
    if value is None:
        return NO_VALUE
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    return f"{value:.1f}ms" if value < 10 else f"{value:.0f}ms"


def _colour(paint: Palette, cell: str, rate: float | None) -> str:
    if rate is None:
        return cell
    return paint(Tone.GOOD if rate >= GOOD else Tone.WARN if rate >= FAIR else Tone.BAD, cell)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int, rates: Sequence[dict[int, float | None]],
           color: bool) -> str:  # fmt: skip
    """Columns padded to their widest cell: the first `left` columns left-aligned, numbers right-aligned.

    `rates[i]` maps the column indexes of row i to colour by success rate (only when `color`).
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    paint = Palette(color)
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = []
        for column, cell in enumerate(row):
            padded = cell.ljust(widths[column]) if column < left else cell.rjust(widths[column])
            if index > 0 and column in rates[index - 1]:
                padded = _colour(paint, padded, rates[index - 1][column])
            cells.append(padded)
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


# --- routes -----------------------------------------------------------------------------------------


def _route_name(row: RouteRow) -> str:
    return row.route if row.in_profile else f"{row.route} {NOT_IN_PROFILE}"


def _service_name(row: RouteRow, namespace: str) -> str:
    return row.service if row.namespace == namespace else f"{row.service}.{row.namespace}"


def _latency_cells(latency: Latency) -> list[str]:
    return [latency_cell(latency.p50), latency_cell(latency.p95), latency_cell(latency.p99)]


def routes_table(report: RoutesReport, *, wide: bool = False, color: bool = False) -> str:
    """`meshctl routes` as the table of the ebook (ROUTE SERVICE SUCCESS RPS LATENCY_P50 ...)."""
    if wide:
        header = ["ROUTE", "SERVICE", "EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS", "ACTUAL_RPS"]
    else:
        header = ["ROUTE", "SERVICE", "SUCCESS", "RPS"]
    header += ["LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    rows: list[list[str]] = []
    rates: list[dict[int, float | None]] = []
    for route in report.rows:
        window = report.span_s  # the window, or the part of it that holds data
        cells = [_route_name(route), _service_name(route, report.namespace)]
        cells += [success_cell(route.effective), rps_cell(route.effective, window)]
        colours: dict[int, float | None] = {2: route.effective.success_rate}
        if wide:
            actual = route.actual or Counts()
            cells += [success_cell(actual), rps_cell(actual, window)]
            colours[4] = actual.success_rate
        rows.append(cells + _latency_cells(route.latency))
        rates.append(colours)
    return _table(header, rows, 2, rates, color)


def routes_notes(report: RoutesReport) -> list[str]:
    """What the table cannot say, for stderr: a reason for every empty or odd row."""
    notes = _coverage_notes(report)
    if any(not row.in_profile for row in report.rows):
        notes.append(f"{NOT_IN_PROFILE} a route with traffic in the window that the service's profile no longer names")
    for service in report.unprofiled:
        notes.append(
            f"{service} has no ServiceProfile, so all its requests are [DEFAULT]; "
            "write one with `meshctl profile --open-api SPEC` and `meshctl apply -f`"
        )
    profiled = {row.service for row in report.rows} - {s.partition(".")[0] for s in report.unprofiled}
    for row in report.rows:
        if row.route == DEFAULT_ROUTE and row.has_traffic and row.service in profiled:
            notes.append(f"[DEFAULT] of {row.service}: requests that matched no route of its ServiceProfile")
        if row.has_traffic and row.latency.p50 is None:
            notes.append(f"{row.route} of {row.service}: responses without a latency in the window, so latency is -")
    idle = [row for row in report.rows if not row.has_traffic]
    if report.rows and len(idle) == len(report.rows):
        notes.append(f"no requests in the last {format_duration(report.span_s)} (a longer --window may show some)")
        return notes
    unmatched = [row.service for row in idle if row.route == DEFAULT_ROUTE and row.service in profiled]
    uncalled = [f"{row.route} ({row.service})" for row in idle if row.route != DEFAULT_ROUTE]
    if uncalled:
        notes.append(f"{NO_VALUE} {', '.join(uncalled)}: named by the profile, no requests in the window")
    if unmatched:
        notes.append(f"{NO_VALUE} [DEFAULT] of {', '.join(unmatched)}: every request matched a route of the profile")
    return notes


def _coverage_notes(report: RoutesReport) -> list[str]:
    coverage = report.coverage
    if coverage is None:
        return []
    notes = []
    if coverage.covered_s is not None and coverage.covered_s < report.window_s:
        covered = format_duration(coverage.covered_s)
        notes.append(
            f"window covers {covered} of data, not {format_duration(report.window_s)}: Prometheus has scraped "
            f"these proxies for {covered} only; rates are per second of those {covered}"
        )
    for pod in coverage.unscraped:
        notes.append(
            f"{pod}: Prometheus has no scrape target for its proxy yet, so its requests are missing here "
            "(it picks up new proxies within seconds; `meshctl check --proxy` says if it does not)"
        )
    for pod in coverage.failing:
        notes.append(
            f"{pod}: Prometheus' last scrape of its proxy failed, so its latest requests are missing here "
            "(`meshctl check --proxy` says why)"
        )
    return notes


def _number(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _counts_json(counts: Counts, window_s: float) -> dict[str, Any]:
    return {
        "requests": round(counts.total),
        "success_rate": _number(counts.success_rate, 6),
        "rps": round(counts.rps(window_s), 4),
    }


def _latency_json(latency: Latency) -> dict[str, float | None]:
    return {"p50": _number(latency.p50, 3), "p95": _number(latency.p95, 3), "p99": _number(latency.p99, 3)}


def routes_json(report: RoutesReport) -> dict[str, Any]:
    return {
        "target": report.target,
        "namespace": report.namespace,
        "direction": report.direction,
        "to": report.to,
        "window_s": report.window_s,
        "covered_s": None if report.coverage is None else _number(report.coverage.covered_s, 3),
        "rate_span_s": report.span_s,
        "routes": [
            {
                "route": row.route,
                "service": row.service,
                "namespace": row.namespace,
                "in_profile": row.in_profile,
                **_counts_json(row.effective, report.span_s),
                "latency_ms": _latency_json(row.latency),
                "actual": None if row.actual is None else _counts_json(row.actual, report.span_s),
            }
            for row in report.rows
        ],
        "unprofiled": list(report.unprofiled),
        "unscraped": [] if report.coverage is None else list(report.coverage.unscraped),
        "failing_scrapes": [] if report.coverage is None else list(report.coverage.failing),
    }


# --- stat -------------------------------------------------------------------------------------------


def _meshed_cell(row: WorkloadRow) -> str:
    if row.meshed is None:
        return NO_VALUE
    return str(row.meshed) if row.instances is None else f"{row.meshed}/{row.instances}"


def _int_cell(value: int | None) -> str:
    return NO_VALUE if value is None else str(value)


def stat_table(report: StatReport, *, color: bool = False) -> str:
    """`meshctl stat`: NAME MESHED SUCCESS RPS LATENCY_P50/95/99 IN_FLIGHT TCP_CONN, one row per workload."""
    by_namespace = report.kind != "namespace" and report.namespace is None
    header = (["NAMESPACE"] if by_namespace else []) + ["NAME", "MESHED", "SUCCESS", "RPS"]
    header += ["LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "IN_FLIGHT", "TCP_CONN"]
    left = 2 if by_namespace else 1
    rows: list[list[str]] = []
    rates: list[dict[int, float | None]] = []
    for row in report.rows:
        cells = ([row.namespace] if by_namespace else []) + [row.name, _meshed_cell(row)]
        cells += [success_cell(row.counts), rps_cell(row.counts, report.window_s), *_latency_cells(row.latency)]
        cells += [_int_cell(row.in_flight), _int_cell(row.tcp_connections)]
        rows.append(cells)
        rates.append({left + 1: row.counts.success_rate})
    return _table(header, rows, left, rates, color)


def stat_notes(report: StatReport) -> list[str]:
    if not report.rows:
        return ["no workload matches: `meshctl status` lists the pods of the mesh"]
    if not any(row.counts.total > 0 for row in report.rows):
        return [f"no requests in the last {report.window_s}s (a longer --window may show some)"]
    return []


def stat_json(report: StatReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "namespace": report.namespace,
        "window_s": report.window_s,
        "workloads": [
            {
                "namespace": row.namespace,
                "name": row.name,
                "meshed": row.meshed,
                "instances": row.instances,
                **_counts_json(row.counts, report.window_s),
                "latency_ms": _latency_json(row.latency),
                "in_flight": row.in_flight,
                "tcp_connections": row.tcp_connections,
            }
            for row in report.rows
        ],
    }
