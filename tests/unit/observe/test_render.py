"""Golden output of `routes` (table, wide, json) and `stat` (table, json): the bytes are the contract."""

from __future__ import annotations

import json
from dataclasses import replace

from meshctl.cli.tables import (
    routes_json,
    routes_notes,
    routes_table,
    stat_json,
    stat_notes,
    stat_table,
)
from meshctl.observe.models import Coverage, RoutesReport, StatReport
from meshctl.observe.prometheus import Sample
from meshctl.observe.routes import assemble_coverage
from tests.unit.observe.conftest import golden


def test_routes_table(routes_report: RoutesReport) -> None:
    golden("routes.table.txt", routes_table(routes_report))


def test_routes_wide(routes_report: RoutesReport) -> None:
    golden("routes.wide.txt", routes_table(routes_report, wide=True))


def test_routes_json(routes_report: RoutesReport) -> None:
    text = json.dumps(routes_json(routes_report), indent=2) + "\n"
    golden("routes.json", text)
    document = json.loads(text)
    row = next(r for r in document["routes"] if r["route"] == "POST /books")
    assert row["success_rate"] == 0.75 and row["requests"] == 60 and row["rps"] == 1.0
    assert row["actual"] == {"requests": 70, "success_rate": 0.642857, "rps": 1.1667}
    idle = next(r for r in document["routes"] if r["route"] == "GET /")
    assert idle["success_rate"] is None and idle["latency_ms"] == {"p50": None, "p95": None, "p99": None}


def test_routes_rows_are_sorted_with_default_last(routes_report: RoutesReport) -> None:
    names = [row.route for row in routes_report.rows]
    assert names == ["GET /", "GET /authors/{id}", "GET /books/{id}", "GET /old", "POST /books", "[DEFAULT]"]
    assert [row.in_profile for row in routes_report.rows] == [True, True, True, False, True, True]


def test_routes_notes_explain_every_odd_row(routes_report: RoutesReport) -> None:
    notes = routes_notes(routes_report)
    assert len(notes) == 3
    assert "no longer names" in notes[0]  # GET /old *
    assert notes[1].startswith("[DEFAULT] of webapp: requests that matched no route")
    assert notes[2] == "- GET / (webapp): named by the profile, no requests in the window"


def test_a_window_with_little_data_says_so_and_rates_use_what_it_covers(routes_report: RoutesReport) -> None:
    short = replace(routes_report, coverage=Coverage(8.0, unscraped=("books-0",), failing=("authors-0",)))
    notes = routes_notes(short)
    assert notes[0].startswith("window covers 8s of data, not 1m: ")
    assert notes[1].startswith("books-0: Prometheus has no scrape target for its proxy yet")
    assert notes[2].startswith("authors-0: Prometheus' last scrape of its proxy failed")
    document = routes_json(short)
    post = next(r for r in document["routes"] if r["route"] == "POST /books")
    assert document["covered_s"] == 8.0 and document["rate_span_s"] == 8.0
    assert post["rps"] == 7.5  # 60 requests over the 8 s covered, not over the 60 s asked for
    assert "7.50rps" in routes_table(short)


def test_coverage_from_scrape_counts() -> None:
    def sample(pod: str, signal: str, value: float) -> Sample:
        return Sample({"pod": pod, "signal": signal}, value)

    fresh = assemble_coverage(
        [sample("webapp-0", "samples", 2), sample("webapp-0", "up", 1), sample("webapp-1", "up", 0),
         sample("webapp-1", "samples", 1)],
        ["webapp-0", "webapp-1", "webapp-2"], 5.0, 60,
    )  # fmt: skip
    assert fresh == Coverage(10.0, unscraped=("webapp-2",), failing=("webapp-1",))
    steady = assemble_coverage([sample("webapp-0", "samples", 11)], ["webapp-0"], 5.0, 60)
    assert steady.covered_s == 60.0  # 11 or 12 scrapes of 5 s: the whole minute
    assert assemble_coverage([], ["webapp-0"], 5.0, 60) == Coverage(None, unscraped=("webapp-0",))


def test_colour_only_when_asked(routes_report: RoutesReport) -> None:
    plain = routes_table(routes_report)
    assert "\x1b[" not in plain
    coloured = routes_table(routes_report, color=True)
    assert "\x1b[32m" in coloured  # 100 %
    assert "\x1b[31m" in coloured  # 75 %
    assert "\x1b[33m" in coloured  # 98.33 %


def test_stat_table(stat_report: StatReport) -> None:
    golden("stat.table.txt", stat_table(stat_report))


def test_stat_json(stat_report: StatReport) -> None:
    text = json.dumps(stat_json(stat_report), indent=2) + "\n"
    golden("stat.json", text)
    by_name = {w["name"]: w for w in json.loads(text)["workloads"]}
    assert by_name["webapp"]["meshed"] == 2 and by_name["webapp"]["instances"] == 2
    assert by_name["books"]["in_flight"] == 0  # never below zero
    assert by_name["ratings"]["meshed"] == 0 and by_name["ratings"]["requests"] == 0
    assert by_name["ratings"]["success_rate"] is None


def test_stat_notes(stat_report: StatReport) -> None:
    assert stat_notes(stat_report) == []
