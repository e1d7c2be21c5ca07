"""Shared fixtures of the observe tests: reports built from Prometheus-shaped samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshctl.observe.models import RoutesReport, StatReport
from meshctl.observe.prometheus import Sample
from meshctl.observe.routes import assemble_routes
from meshctl.observe.stat import assemble_stat

GOLDEN = Path(__file__).parent / "golden"
BOUNDS_S = ("0.001", "0.002", "0.003", "0.004", "0.005", "0.01", "0.02", "0.03", "0.04", "0.05", "0.1", "0.2",
            "0.3", "0.4", "0.5", "1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "+Inf")  # fmt: skip


def histogram(labels: dict[str, str], per_bucket: dict[str, float]) -> list[Sample]:
    """Cumulative bucket samples from counts per bucket bound (non-cumulative, as observed)."""
    total = 0.0
    out = []
    for le in BOUNDS_S:
        total += per_bucket.get(le, 0.0)
        out.append(Sample({**labels, "le": le}, total))
    return out


def _route(service: str, route: str) -> dict[str, str]:
    return {"dst_namespace": "booksapp", "dst_service": service, "rt_route": route}


def _count(service: str, route: str, cls: str, kind: str, value: float) -> Sample:
    return Sample({**_route(service, route), "classification": cls, "kind": kind}, value)


@pytest.fixture
def routes_report() -> RoutesReport:
    counts = [
        _count("webapp", "GET /books/{id}", "success", "effective", 120),
        _count("webapp", "GET /books/{id}", "success", "actual", 120),
        _count("webapp", "POST /books", "success", "effective", 45),
        _count("webapp", "POST /books", "failure", "effective", 15),
        _count("webapp", "POST /books", "success", "actual", 45),
        _count("webapp", "POST /books", "failure", "actual", 25),  # retried attempts
        _count("webapp", "GET /authors/{id}", "success", "effective", 59),
        _count("webapp", "GET /authors/{id}", "failure", "effective", 1),
        _count("webapp", "GET /old", "success", "effective", 6),  # a route the profile dropped
        _count("webapp", "[DEFAULT]", "success", "effective", 3),
    ]
    buckets = [
        *histogram(_route("webapp", "GET /books/{id}"), {"0.005": 60, "0.01": 54, "0.02": 6}),
        *histogram(_route("webapp", "POST /books"), {"0.1": 10, "0.2": 40, "0.3": 10}),
        *histogram(_route("webapp", "GET /authors/{id}"), {"0.1": 15, "0.2": 30, "0.3": 14, "+Inf": 1}),
        *histogram(_route("webapp", "GET /old"), {"0.002": 6}),
        *histogram(_route("webapp", "[DEFAULT]"), {"0.001": 3}),
    ]
    profiles = {("booksapp", "webapp"): ("GET /", "GET /books/{id}", "GET /authors/{id}", "POST /books")}
    rows = assemble_routes(counts, buckets, [("booksapp", "webapp")], profiles)
    return RoutesReport("deploy/webapp", "booksapp", None, 60, rows, ())


@pytest.fixture
def stat_report() -> StatReport:
    group = ("namespace", "deployment")

    def key(name: str) -> dict[str, str]:
        return {"namespace": "booksapp", "deployment": name}

    counts = [
        Sample({**key("webapp"), "classification": "success"}, 290),
        Sample({**key("webapp"), "classification": "failure"}, 10),
        Sample({**key("books"), "classification": "success"}, 600),
        Sample({**key("authors"), "classification": "success"}, 30),
    ]
    buckets = [
        *histogram(key("webapp"), {"0.01": 150, "0.2": 140, "0.3": 10}),
        *histogram(key("books"), {"0.002": 500, "0.005": 100}),
        *histogram(key("authors"), {"0.1": 10, "0.2": 20}),
    ]
    saturation = [
        Sample({**key("webapp"), "signal": "in_flight"}, 2),
        Sample({**key("webapp"), "signal": "tcp"}, 4),
        Sample({**key("webapp"), "signal": "meshed"}, 2),
        Sample({**key("books"), "signal": "in_flight"}, -1),  # a scrape between request and response counts
        Sample({**key("books"), "signal": "tcp"}, 3),
        Sample({**key("books"), "signal": "meshed"}, 1),
        Sample({**key("authors"), "signal": "meshed"}, 1),
    ]
    instances: dict[tuple[str, ...], int] = {
        ("booksapp", "webapp"): 2, ("booksapp", "books"): 2, ("booksapp", "authors"): 1, ("booksapp", "ratings"): 1,
    }  # fmt: skip
    rows = assemble_stat(group, counts, buckets, saturation, instances)
    return StatReport("deployment", "booksapp", 60, rows)


def golden(name: str, actual: str) -> None:
    """Compare with golden/<name>; MESHCTL_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("MESHCTL_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with MESHCTL_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")
