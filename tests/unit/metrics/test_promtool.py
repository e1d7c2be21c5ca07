"""`promtool check metrics` on real output: the parser Prometheus' own tooling uses."""

from __future__ import annotations

import shutil
import subprocess

from meshctl.metrics.registry import ProxyMetrics
from tests.unit.metrics.scenario import HOSTILE, scenario_metrics


def _promtool(exposition: bytes) -> set[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `bash .ci/setup` (Debian package `prometheus`)"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60, check=False
    )
    problems = {line.strip() for line in (done.stdout + done.stderr).decode().splitlines() if line.strip()}
    # 0 is clean; 3 is lint findings, 1 a parse error: both fail.
    assert done.returncode == 0, problems
    return problems


def test_scenario_passes_promtool() -> None:
    assert _promtool(scenario_metrics().render()) == set()


def test_empty_registry_passes_promtool() -> None:
    assert _promtool(ProxyMetrics().render()) == set()


def test_hostile_values_in_every_label_pass_promtool() -> None:
    metrics = ProxyMetrics()
    nasty = (HOSTILE, "\udcff\x00\r\x1b[2J", "é" * 400, "\\", '"', "\n", "")
    for value in nasty:
        stats = metrics.route("outbound", value, value, True, value, value)
        stats.on_request()
        stats.on_response(200, None, 1.0, False)
        metrics.proxy_error(value)
    assert _promtool(metrics.render()) == set()
