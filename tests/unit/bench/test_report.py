from __future__ import annotations

from typing import Any

import pytest

from bench.report import rate_key, render_markdown, summarize_results


def _lat(arm: str, rnd: int, p50: float, p99: float, *, rate: float = 1000.0, valid: bool = True,
         rss: int = 0, noisy: bool = False) -> dict[str, Any]:  # fmt: skip
    proxies = {} if arm == "direct" else {f"proxy-{arm}": {"rss_peak_kib": rss, "vcpu": 0.1}}
    return {
        "round": rnd, "rate": rate, "arm": arm, "valid": valid, "problems": [] if valid else ["3 errors"],
        "driver_limited": noisy, "achieved_rps": rate,
        "latency_ms": {"p50": p50, "p90": p50 * 2, "p99": p99, "p99.9": p99 * 2, "max": p99 * 3},
        "driver_lag_ms": {"p99": 0.05}, "proxies": proxies,
    }  # fmt: skip


def _tput(arm: str, rps: float, cpu: float = 0.97, errors: int = 0, rss: int = 0) -> dict[str, Any]:
    return {"round": 0, "arm": arm, "rps": rps, "errors": errors,
            "proxy_cpu": {} if arm == "direct" else {arm: cpu},
            "proxy_rss_kib": {} if arm == "direct" else {f"proxy-{arm}": rss}}  # fmt: skip


def _results() -> dict[str, Any]:
    runs = []
    for rnd, base in enumerate((0.10, 0.12, 0.11)):
        runs += [_lat("direct", rnd, base, 0.3), _lat("haproxy", rnd, base + 0.05, 0.4, rss=14_000),
                 _lat("mesh-2hop-mtls", rnd, base + 0.4 + rnd * 0.1, 1.5, rss=40_000 + rnd)]  # fmt: skip
        # At 200 rps the budgets do not apply, and its memory is not the budget's "at 1,000 rps".
        runs += [_lat("direct", rnd, base, 0.3, rate=200), _lat("mesh-2hop-mtls", rnd, 9.0, 9.0, rate=200,
                                                                rss=90_000)]  # fmt: skip
    return {
        "date": "2026-11-25T10:00:00+00:00", "commit": "abc1234", "dirty": False, "command": "python -m bench.run",
        "machine": {"cpu": "x", "cpus": 2, "kernel": "6", "nginx": "n", "haproxy": "h", "wrk": "w", "python": "3"},
        "settings": {"rate": [1000.0, 200.0], "connections": 16, "duration": 10.0, "warmup": 2.0, "rounds": 3,
                     "wrk_connections": 32, "wrk_seconds": 10, "h2_clients": 8, "h2_streams": 10, "h2_seconds": 5},
        "mesh_error": None,
        "arms": {"direct": {"description": "straight to nginx"}},
        # bench.sidecar's proxy (no control client) is listed but never judged against the memory budget.
        "idle_rss_kib": {"haproxy": 14_000, "proxy-mesh-2hop-mtls": 30 * 1024, "sidecar-mesh-1hop": 99 * 1024},
        "idle_pss_kib": {"haproxy": 9_000, "proxy-mesh-2hop-mtls": 20 * 1024},
        "latency_runs": runs,
        "throughput_runs": [_tput("direct", 90_000), _tput("haproxy", 50_000, cpu=1.0),
                            _tput("mesh-1hop", 30_000, cpu=0.75), _tput("mesh-2hop-mtls", 10_000, rss=61_000)],
        "h2_runs": [_tput("direct", 60_000), _tput("haproxy", 40_000, cpu=1.0), _tput("mesh-2hop-mtls", 4_000)],
    }  # fmt: skip


def test_added_latency_is_paired_with_the_same_rounds_direct_run_at_each_rate() -> None:
    summary = summarize_results(_results())
    assert list(summary["latency"]) == ["1000", "200"]
    added = summary["latency"]["1000"]["mesh-2hop-mtls"]["added_p50"]
    assert added["median"] == pytest.approx(0.5) and added["min"] == pytest.approx(0.4)
    assert added["max"] == pytest.approx(0.6)
    assert summary["latency"]["1000"]["haproxy"]["added_p99"]["median"] == pytest.approx(0.1)
    assert summary["latency"]["200"]["mesh-2hop-mtls"]["added_p50"]["median"] == pytest.approx(9.0 - 0.11)
    assert "added_p50" not in summary["latency"]["1000"]["direct"]
    # 0.1 cores of proxy CPU at 1,000 rps: 100 µs per request.
    assert summary["latency"]["1000"]["haproxy"]["cpu_us_per_request"] == pytest.approx(100.0)


def test_throughput_ratios_are_against_haproxy_and_direct_and_per_cpu_second() -> None:
    summary = summarize_results(_results())
    one_hop = summary["throughput"]["mesh-1hop"]
    assert one_hop["x_haproxy"] == pytest.approx(0.6) and one_hop["x_direct"] == pytest.approx(1 / 3)
    # HAProxy: 20 µs per request on a full core; the proxy 25 µs on 0.75 of one: 0.8 × per CPU-second.
    assert one_hop["cpu_us_per_request"] == pytest.approx(25.0)
    assert one_hop["x_haproxy_per_cpu"] == pytest.approx(0.8)
    assert summary["throughput"]["direct"]["x_haproxy_per_cpu"] is None
    assert summary["h2"]["mesh-2hop-mtls"]["x_haproxy"] == pytest.approx(0.1)


def test_budgets_judge_the_figures_at_1000_rps() -> None:
    summary = summarize_results(_results())
    budgets = {b["key"]: b for b in summary["budgets"]}
    assert budgets["throughput_1hop_x_haproxy"]["pass"] is True
    assert budgets["throughput_1hop_x_haproxy"]["per_cpu"] == pytest.approx(0.8)
    assert budgets["throughput_2hop_x_haproxy"]["pass"] is False  # 0.2 < 0.33
    assert budgets["added_p50_2hop_ms"]["pass"] is True  # exactly at 0.5
    assert budgets["added_p99_2hop_ms"]["pass"] is False  # 1.2 > 1.0
    assert budgets["idle_rss_mib"]["measured"] == pytest.approx(30.0)  # HAProxy is not ours
    assert budgets["rate_rss_mib"]["measured"] == pytest.approx(40_002 / 1024)  # not the 200 rps runs
    assert summary["memory"]["proxy-mesh-2hop-mtls"]["after_peak_kib"] == 61_000
    assert summary["memory"]["proxy-mesh-2hop-mtls"]["idle_pss_kib"] == 20 * 1024
    assert summary["complete"] is True


def test_budgets_are_not_measured_without_a_1000_rps_run() -> None:
    results = _results()
    results["latency_runs"] = [r for r in results["latency_runs"] if r["rate"] == 200]
    budgets = {b["key"]: b for b in summarize_results(results)["budgets"]}
    assert budgets["added_p50_2hop_ms"]["measured"] is None and budgets["added_p50_2hop_ms"]["pass"] is None
    assert budgets["rate_rss_mib"]["measured"] is None


def test_invalid_runs_are_left_out_and_make_the_run_incomplete() -> None:
    results = _results()
    results["latency_runs"][0]["valid"] = False  # round 0's direct run at 1,000 rps
    results["latency_runs"][0]["problems"] = ["achieved 900 rps of 1000 offered (saturated)"]
    results["latency_runs"][1]["driver_limited"] = True  # noisy, but valid
    summary = summarize_results(results)
    added = summary["latency"]["1000"]["mesh-2hop-mtls"]["added_p50"]
    assert added["min"] == pytest.approx(0.5)  # rounds 1 and 2 only
    assert summary["latency"]["1000"]["direct"]["valid_runs"] == 2
    assert summary["latency"]["1000"]["haproxy"]["noisy_runs"] == 1
    assert summary["complete"] is False
    results["summary"] = summary
    text = render_markdown(results)
    assert "saturated" in text and "| direct |" in text and "**FAIL**" in text and "incomplete" in text
    assert "| 3/3 (1) |" in text  # haproxy: three valid runs, one of them noisy


def test_errors_in_a_throughput_phase_make_the_run_incomplete() -> None:
    results = _results()
    results["h2_runs"][2]["errors"] = 7
    assert summarize_results(results)["complete"] is False


def test_markdown_leads_with_budgets_and_shows_every_section() -> None:
    results = _results()
    results["h2_skipped"] = {"mesh-1hop": "no plaintext h2 upstream"}
    results["summary"] = summarize_results(results)
    text = render_markdown(results)
    sections = [line for line in text.splitlines() if line.startswith("#")]
    assert sections[1] == "## Budgets (DESIGN.md)"
    assert any(s.startswith("### 1000 rps") for s in sections) and any(s.startswith("### 200 rps") for s in sections)
    assert any("HTTP/2" in s for s in sections) and "Left out: mesh-1hop: no plaintext h2 upstream." in text
    assert "| mesh-1hop | 0.60 | 0.33 | 0.80 | 30000 |" in text
    assert "| proxy-mesh-2hop-mtls | 30.0 | 20.0 | 39.1 | 59.6 |" in text  # idle, PSS, at rate, after
    assert rate_key(1000.0) == "1000" and rate_key(12.5) == "12.5"


def test_a_run_without_our_proxies_says_so() -> None:
    results = _results()
    results["latency_runs"] = [r for r in results["latency_runs"] if not r["arm"].startswith("mesh")]
    results["throughput_runs"] = results["throughput_runs"][:2]
    results["h2_runs"] = results["h2_runs"][:2]
    results["idle_rss_kib"] = {"haproxy": 14_000}
    results["mesh_error"] = "BenchError: proxy-nginx-0 exited with status 2"
    results["summary"] = summarize_results(results)
    assert results["summary"]["complete"] is False
    text = render_markdown(results)
    assert "not measured" in text and "Our proxies were not measured" in text


def test_the_two_haproxy_peer_is_shown_beside_the_two_hop_budgets() -> None:
    results = _results()
    for rnd, base in enumerate((0.10, 0.12, 0.11)):
        results["latency_runs"].append(_lat("haproxy-2hop-mtls", rnd, base + 0.3, 1.1))
    results["throughput_runs"].append(_tput("haproxy-2hop-mtls", 20_000, cpu=1.0))
    results["h2_runs"].append(_tput("haproxy-2hop-mtls", 12_000, cpu=1.0))
    budgets = {b["key"]: b for b in summarize_results(results)["budgets"]}
    assert budgets["h2_2hop_x_haproxy"]["measured"] == pytest.approx(0.1)  # 4,000 against HAProxy's 40,000
    assert budgets["h2_2hop_x_haproxy"]["pass"] is False and budgets["h2_2hop_x_haproxy"]["peer"] == pytest.approx(0.3)
    assert budgets["added_p50_2hop_ms"]["peer"] == pytest.approx(0.3)
    assert budgets["added_p99_2hop_ms"]["peer"] == pytest.approx(0.8)
    assert budgets["throughput_2hop_x_haproxy"]["peer"] == pytest.approx(0.4)
    assert budgets["throughput_1hop_x_haproxy"]["peer"] is None  # one hop has HAProxy itself as its peer
    text = render_markdown({**results, "summary": summarize_results(results)})
    assert "| two HAProxies, same shape |" in text
    assert "| one-core throughput, two proxies with mTLS (× HAProxy) | ≥ 0.33 | 0.200 | **FAIL** |" in text
    assert "| 0.400 |" in text


def test_without_the_peer_arm_its_column_says_not_measured() -> None:
    budgets = summarize_results(_results())["budgets"]
    assert all(b["peer"] is None for b in budgets)


def _with_floor() -> dict[str, Any]:
    results = _results()
    split = {"samples": 100, "others_samples": 25,
             "by_category": {"kernel": 80, "libpython": 10, "uvloop": 5, "httptools": 5, "ssl+crypto": 0, "ngh2": 0,
                             "haproxy": 0, "other": 0}}  # fmt: skip
    floor_1 = _tput("floor-1hop", 40_000, cpu=1.0) | {"cpu_split": split}  # 25 µs per request
    results["throughput_runs"] += [floor_1, _tput("floor-2hop-tls", 20_000, cpu=1.0)]
    return results


def test_our_arms_are_compared_with_the_floor_of_the_same_shape() -> None:
    tput = summarize_results(_with_floor())["throughput"]
    assert tput["mesh-1hop"]["x_floor"] == pytest.approx(0.75)  # 30,000 / 40,000
    assert tput["mesh-1hop"]["x_floor_per_cpu"] == pytest.approx(1.0)  # 25 µs each
    assert tput["mesh-2hop-mtls"]["x_floor"] == pytest.approx(0.5)
    assert tput["mesh-2hop-mtls"]["x_floor_per_cpu"] == pytest.approx(50 / 97)
    assert tput["haproxy"]["x_floor"] is None and tput["floor-1hop"]["x_floor"] is None


def test_the_floor_columns_note_and_cpu_split_render_only_with_a_floor_arm() -> None:
    results = _with_floor()
    results["summary"] = summarize_results(results)
    text = render_markdown(results)
    assert "| arm | × HAProxy | × direct | × HAProxy per CPU-s | × floor | × floor per CPU-s |" in text
    assert "| mesh-1hop | 0.60 | 0.33 | 0.80 | 0.75 | 1.00 | 30000 |" in text
    assert "**The floor arms**" in text
    # 25 µs per request split 80/10/5/5; a fifth of the core's samples were someone else's.
    assert "| floor-1hop | 25.0 | 20.0 | 2.5 | 1.2 | 1.2 | 0.0 | 0.0 | 0.0 | 0.0 | 100 | 20% |" in text
    h2 = text.split("## Peak HTTP/2")[1]
    assert "× floor" not in h2  # no floor arm over HTTP/2
    plain = _results()
    plain["cpu_split_skipped"] = "perf is not installed (apt-get install linux-perf)"
    plain["summary"] = summarize_results(plain)
    text = render_markdown(plain)
    assert "× floor" not in text and "**The floor arms**" not in text
    assert "No CPU split by shared object in this run: perf is not installed" in text


def test_a_floor_that_did_not_start_makes_the_run_incomplete_and_says_why() -> None:
    results = _results()
    results["floor_error"] = "BenchError: floor-2hop-client exited with status 1"
    results["summary"] = summarize_results(results)
    assert results["summary"]["complete"] is False
    assert "The floor arms were not measured: BenchError: floor-2hop-client" in render_markdown(results)
