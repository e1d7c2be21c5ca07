from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.tap import _sidecar_config
from bench.tap_counter import Counts, observe_request, split_messages
from bench.tap_mesh import add_tap
from bench.tap_report import latency_summary, ramp_summary, render_markdown, step_verdict, summarize
from meshctl.api import tap_pb2


def _raw(**event: Any) -> bytes:
    return tap_pb2.TapEvent(**event).SerializeToString()


def test_counts_tell_the_event_kinds_apart_from_the_wire_bytes_alone() -> None:
    counts = Counts()
    for message in (
        _raw(request_init=tap_pb2.RequestInit(id=1, method="GET", path="/")),
        _raw(response_init=tap_pb2.ResponseInit(id=1, http_status=200)),
        _raw(response_end=tap_pb2.ResponseEnd(id=1, response_bytes=1024)),
        _raw(body=tap_pb2.BodyChunk(id=1, data=b"x")),
        _raw(dropped=tap_pb2.Dropped(queue_full=7, rate_limited=2)),
        _raw(dropped=tap_pb2.Dropped(queue_full=1)),
    ):
        counts.add_raw(message)
    assert (counts.request_init, counts.response_init, counts.response_end, counts.body) == (1, 1, 1, 1)
    assert (counts.dropped, counts.queue_full, counts.rate_limited) == (2, 8, 2)
    assert counts.events == 4 and counts.other == 0


def test_an_empty_or_unknown_message_is_counted_as_other() -> None:
    counts = Counts()
    counts.add_raw(b"")  # an event with nothing set serializes to no bytes
    counts.add_raw(b"\x30\x01")  # field 6, varint: a kind this client does not know
    assert counts.other == 2 and counts.events == 0


def test_split_messages_takes_whole_messages_and_keeps_a_partial_one() -> None:
    one, two = _raw(request_init=tap_pb2.RequestInit(id=1)), _raw(response_end=tap_pb2.ResponseEnd(id=1))
    wire = b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in (one, two))
    buffer = bytearray(wire[:-3])
    assert split_messages(buffer) == [one] and bytes(buffer) == wire[5 + len(one) : -3]
    buffer += wire[-3:]
    assert split_messages(buffer) == [two] and buffer == bytearray()
    assert split_messages(bytearray(b"\x00\x00")) == []


def test_the_subscription_takes_everything_without_a_practical_rate_limit() -> None:
    request = observe_request()
    assert not request.HasField("match") and not request.extract.bodies
    assert request.limit >= 1_000_000


def test_the_tap_proxy_config_differs_from_the_plain_one_only_by_ports_and_tap() -> None:
    base = {"pod": "p", "inbound": {"listen": "127.0.0.1:1"}, "outbound": {"listen": "127.0.0.1:2"},
            "admin": {"listen": "127.0.0.1:3"}}  # fmt: skip
    plain, tapped = _sidecar_config(base, None), _sidecar_config(base, 4190)
    assert "tap" not in plain and tapped["tap"] == {"listen": "127.0.0.1:4190"}
    assert plain["outbound"]["listen"] != tapped["outbound"]["listen"]
    assert base["outbound"] == {"listen": "127.0.0.1:2"}  # the base is not modified


def _step(rate: float, events: int, *, queue_full: int = 0, valid: bool = True) -> dict[str, Any]:
    requests = int(rate * 5)
    return {"rate": rate, "achieved_rps": rate if valid else rate / 2, "valid": valid,
            "problems": [] if valid else ["achieved 500.0 rps of 1000 offered (saturated)"], "requests": requests,
            "expected_events": 3 * requests, "events": events, "queue_full": queue_full, "rate_limited": 0,
            "events_per_s": events / 5, "clean": valid and events == 3 * requests and not queue_full,
            "client_cpu_s": 1.0, "latency_ms": {"p99": 1.0},
            "proxy": {"vcpu": 0.3, "rss_peak_kib": 40_000}}  # fmt: skip


def test_the_ramp_reports_the_highest_clean_rate_and_why_the_next_was_not() -> None:
    steps = [_step(1000, 15_000), _step(2000, 30_000), _step(4000, 59_000, queue_full=300)]
    summary = ramp_summary(steps)
    assert summary["clean_events_per_s"] == pytest.approx(6000) and summary["clean_rate"] == 2000
    assert summary["lossless_events_per_s"] == pytest.approx(6000)
    saturated = _step(4000, 60_000, valid=False)
    assert ramp_summary([*steps[:2], saturated])["lossless_events_per_s"] == pytest.approx(12_000)
    assert summary["first_unclean_rate"] == 4000 and summary["first_unclean_why"] == "300 requests dropped"
    assert step_verdict(_step(1000, 14_000)) == "1000 events missing"
    assert "saturated" in step_verdict(_step(1000, 15_000, valid=False))
    assert ramp_summary([_step(4000, 1, queue_full=5)])["clean_rate"] is None


def _run(arm: str, rnd: int, p50: float, p99: float, vcpu: float, *, valid: bool = True) -> dict[str, Any]:
    return {"round": rnd, "arm": arm, "valid": valid, "driver_limited": False, "achieved_rps": 1000.0,
            "latency_ms": {"p50": p50, "p90": p50, "p99": p99, "p99.9": p99}, "driver_lag_ms": {"p99": 0.1},
            "proxies": {f"sidecar-{arm}": {"rss_peak_kib": 40_960, "vcpu": vcpu}},
            "tap_client": {"events": 30_000, "queue_full": 0} if arm == "tapped" else {}}  # fmt: skip


def _runs() -> list[dict[str, Any]]:
    runs = []
    for rnd, base in enumerate((1.0, 2.0, 1.5)):
        runs += [_run("no-tap", rnd, 0.2, base, 0.100), _run("untapped", rnd, 0.2, base, 0.101),
                 _run("tapped", rnd, 0.3, base * 1.05, 0.150)]  # fmt: skip
    runs.append(_run("tapped", 3, 9.0, 99.0, 0.9, valid=False))  # invalid: no pair, no median
    return runs


def test_latency_pairs_each_arm_with_its_own_round() -> None:
    summary = latency_summary(_runs())
    cost = summary["pairs"]["tap_cost"]
    assert cost["rounds"] == 3 and cost["p99_ratio"]["median"] == pytest.approx(1.05)
    assert cost["added_p99_ms"]["median"] == pytest.approx(0.075) and cost["added_p99_ms"]["max"] == pytest.approx(0.1)
    assert cost["added_cpu_us"]["median"] == pytest.approx(49.0)
    having = summary["pairs"]["having_tap"]
    assert having["cpu_ratio"]["median"] == pytest.approx(1.01) and having["added_p99_ms"]["median"] == 0
    tapped = summary["arms"]["tapped"]
    assert tapped["valid_runs"] == 3 and tapped["runs"] == 4 and tapped["cpu_us_per_request"] == pytest.approx(150)


def _results() -> dict[str, Any]:
    return {
        "date": "2026-11-29T07:00:00+00:00", "commit": "abc1234", "dirty": False, "command": "python -m bench.tap",
        "wall_s": 200.0, "json_name": "tap-x.json",
        "machine": {"cpu": "x", "cpus": 2, "kernel": "6", "nginx": "n", "python": "3", "loadavg": "1.00 1.00 1.00",
                    "loadavg_after": "2.00 1.00 1.00"},
        "settings": {"client": "raw", "ramp_seconds": 4.0, "ramp_warmup": 1.0, "connections": 16, "rate": 1000.0,
                     "duration": 8.0, "warmup": 2.0, "rounds": 3},
        "proxies": {"no-tap": "sidecar-no-tap", "tap": "sidecar-tap"},
        "idle_rss_kib": {"sidecar-no-tap": 40_000, "sidecar-tap": 40_500},
        "idle_pss_kib": {"sidecar-no-tap": 30_000, "sidecar-tap": 30_500},
        "after_rss_kib": {"sidecar-no-tap": 40_000, "sidecar-tap": 41_000},
        "latency_runs": [r for r in _runs() if r["valid"]],
        "ramp": [_step(1000, 15_000), _step(2000, 30_000), _step(4000, 59_000, queue_full=300)],
        "crashed": [],
    }  # fmt: skip


def test_budgets_are_judged_from_the_same_jobs_ratios() -> None:
    summary = summarize(_results())
    budgets = {b["key"]: b for b in summary["budgets"]}
    assert budgets["clean_events_per_s"]["pass"] is True
    assert budgets["tapped_p99_added_pct"]["value"] == pytest.approx(5.0) and budgets["tapped_p99_added_pct"]["pass"]
    assert budgets["untapped_cpu_added_pct"]["value"] == pytest.approx(1.0)
    assert budgets["tapped_rss_mib"]["value"] == pytest.approx(40.0)
    assert summary["complete"]
    broken = {**_results(), "crashed": ["sidecar-tap"]}
    assert not summarize(broken)["complete"]


def test_tap_md_names_the_load_the_command_and_every_figure() -> None:
    results = _results()
    results["summary"] = summarize(results)
    text = render_markdown(results)
    assert "before the run 1.00 1.00 1.00, after it 2.00 1.00 1.00" in text
    assert "`python -m bench.tap`" in text
    assert "**6000 events/s (at 2000 rps)**; with 0 drops at any rate" in text
    assert "4000 rps (300 requests dropped)" in text
    assert "| tapped − untapped (what tapping adds) | 3 |" in text
    assert "**FAIL**" not in text


def test_the_rss_budget_is_judged_on_the_real_entry_point_when_the_job_measured_it() -> None:
    results = _results()
    results["mesh"] = {"proxy": "proxy-bench-client-0", "idle_rss_kib": 60 * 1024, "idle_pss_kib": 34 * 1024,
                       "rss_peak_kib": 62 * 1024, "valid": True, "problems": [], "achieved_rps": 1000.0,
                       "latency_ms": {"p99": 1.2}, "tap_client": {"events": 30_000, "queue_full": 0}}  # fmt: skip
    summary = summarize(results)
    rss = next(b for b in summary["budgets"] if b["key"] == "tapped_rss_mib")
    assert rss["value"] == pytest.approx(62.0) and rss["pass"] is False
    results["summary"] = summary
    text = render_markdown(results)
    assert "peak of `python -m meshctl.proxy`" in text and "| 60.0 | 34.0 | 62.0 |" in text
    assert not summarize({**results, "mesh": {**results["mesh"], "valid": False}})["complete"]


def test_add_tap_turns_the_listener_on_in_a_proxy_config_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"pod": "p", "admin": {"listen": "127.0.0.1:1"}}))
    add_tap(path, 4190)
    assert json.loads(path.read_text()) == {"pod": "p", "admin": {"listen": "127.0.0.1:1"},
                                            "tap": {"listen": "127.0.0.1:4190"}}  # fmt: skip
