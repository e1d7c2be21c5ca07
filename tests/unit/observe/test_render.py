"""Golden output of `routes` (table, wide, json) and `stat` (table, json): the bytes are the contract."""

from __future__ import annotations

import json

from meshctl.cli.tables import (
    routes_json,
    routes_notes,
    routes_table,
    stat_json,
    stat_notes,
    stat_table,
)
from meshctl.observe.models import RoutesReport, StatReport
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


def test_routes_notes_explain_markers(routes_report: RoutesReport) -> None:
    notes = routes_notes(routes_report)
    assert len(notes) == 1 and "no longer names" in notes[0]


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
