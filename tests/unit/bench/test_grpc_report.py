"""The gRPC section of the bench report, from runs recorded by bench.run (two rounds, figures rounded)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.grpc_report import summarize_grpc
from bench.report import render_markdown, summarize_results


def _run(rnd: int, arm: str, rate: float, p50: float, p99: float, proxies: dict[str, float],
         errors: dict[str, int] | None = None, max_in_flight: int = 64, cpu0: tuple[float, float] = (0.5, 0.4),
         ) -> dict[str, Any]:  # fmt: skip
    errors = errors or {}
    return {
        "round": rnd, "arm": arm, "target": "127.0.0.1:53711", "authority": "ratings.bench.svc.cluster.local:7003",
        "in_flight": 64, "max_in_flight": max_in_flight, "warmup_s": 1.0, "duration_s": 5.0,
        "issued": int(rate * 5) + 600, "calls": int(rate * 5), "calls_per_s": rate, "errors": sum(errors.values()),
        "errors_by_status": errors, "warmup_calls": 500, "warmup_errors_by_status": {}, "after_window": 64,
        "max_calls_reached": False, "window_s": 5.0, "server_cpu": cpu0[0], "client_cpu": cpu0[1], "proxy_cpu": proxies,
        "latency_ms": {"count": rate * 5, "mean": p50, "p50": p50, "p90": p99, "p99": p99, "p99.9": p99, "max": p99},
    }  # fmt: skip


TWO = {"proxy-bench-client-0": 0.30, "proxy-ratings-0": 0.30}
RUNS = [
    _run(0, "direct", 800.0, 77.0, 182.0, {}),
    _run(0, "mesh-2hop-mtls", 300.0, 215.0, 375.0, TWO, cpu0=(0.2, 0.1)),
    _run(1, "direct", 1000.0, 60.0, 150.0, {}),
    _run(1, "mesh-2hop-mtls", 500.0, 130.0, 300.0, TWO, errors={"UNAVAILABLE": 2}, max_in_flight=63, cpu0=(0.2, 0.1)),
]


def _results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "date": "2026-11-29T11:15:18+00:00", "commit": "abc1234", "dirty": False,
        "command": "python -m bench.run --only grpc",
        "machine": {"cpu": "x", "cpus": 2, "kernel": "6", "nginx": "n", "haproxy": "h", "wrk": "w", "python": "3"},
        "settings": {"rate": [1000.0], "connections": 16, "duration": 8.0, "warmup": 2.0, "rounds": 2,
                     "wrk_connections": 32, "wrk_seconds": 6, "h2_clients": 8, "h2_streams": 10, "h2_seconds": 5,
                     "grpc_seconds": 5.0, "grpc_warmup": 1.0, "grpc_in_flight": 64},
        "mesh_error": None, "arms": {}, "grpc_runs": runs,
    }  # fmt: skip


def test_each_arm_is_the_median_over_rounds_against_direct_with_cpu_per_call() -> None:
    arms = summarize_grpc(RUNS)
    assert list(arms) == ["direct", "mesh-2hop-mtls"]
    mesh = arms["mesh-2hop-mtls"]
    assert mesh["calls_per_s"] == pytest.approx(400.0) and arms["direct"]["calls_per_s"] == pytest.approx(900.0)
    assert mesh["x_direct"] == pytest.approx(400 / 900)
    # Both proxies together: 0.6 cores at 400 calls/s.
    assert mesh["proxy_cpu"] == pytest.approx(0.6) and mesh["cpu_us_per_call"] == pytest.approx(1500.0)
    assert arms["direct"]["proxy_cpu"] is None and arms["direct"]["cpu_us_per_call"] is None
    assert mesh["errors"] == 2 and mesh["errors_by_status"] == {"UNAVAILABLE": 2} and mesh["in_flight"] == 63
    # Per CPU-second: direct's CPU 0 (0.9 cores) carried 1,000 calls/s per core; the mesh is bound by its
    # proxies (0.6 cores, busier than its CPU 0 at 0.3): 400 / 0.6 = 667 per core, 0.67 × direct.
    assert mesh["x_direct_per_cpu"] == pytest.approx((400 / 0.6) / (900 / 0.9))
    assert arms["direct"]["x_direct_per_cpu"] == pytest.approx(1.0)


def test_the_budget_row_and_the_section_as_rendered() -> None:
    results = _results(RUNS)
    results["summary"] = summarize_results(results)
    budget = {b["key"]: b for b in results["summary"]["budgets"]}["grpc_2hop_x_direct"]
    assert budget["measured"] == pytest.approx(0.444, abs=1e-3) and budget["pass"] is False
    assert results["summary"]["complete"] is False  # two calls failed
    lines = render_markdown(results).splitlines()
    row = "| gRPC unary, 64 in flight, two proxies with mTLS (× direct) | ≥ 0.6 | 0.444 | **FAIL** | 0.667 | – |"
    assert row in lines
    start = lines.index("| arm | × direct | × direct per CPU-s | calls/s (min…max) | p50 ms | p99 ms "
                        "| proxy CPU (cores) | CPU µs/call | server CPU | client CPU | errors |")  # fmt: skip
    assert lines[start + 2 : start + 4] == [
        "| direct | 1.00 | 1.00 | 900 (800…1000) | 68.50 | 166.00 | – | – | 0.50 | 0.40 | 0 |",
        "| mesh-2hop-mtls | 0.44 | 0.67 | 400 (300…500) | 172.50 | 337.50 | 0.60 | 1500 | 0.20 | 0.10 "
        "| UNAVAILABLE 2 |",
    ]
    assert "Fewer calls in flight than asked for (the client could not keep up): mesh-2hop-mtls (63)" in lines


def test_a_section_that_did_not_run_says_why_and_judges_nothing() -> None:
    results = _results([])
    results["grpc_skipped"] = "--grpc-seconds 0"
    results["summary"] = summarize_results(results)
    budget = {b["key"]: b for b in results["summary"]["budgets"]}["grpc_2hop_x_direct"]
    assert budget["measured"] is None and budget["pass"] is None
    text = render_markdown(results)
    assert "Not measured: --grpc-seconds 0" in text and "| direct | 1.00 |" not in text
    assert "## gRPC" not in render_markdown(_results([]) | {"summary": summarize_results(_results([]))})
