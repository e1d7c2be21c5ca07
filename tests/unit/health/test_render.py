"""The renderers, pinned byte for byte by golden files (one per format), and the live table.

Regenerate after an intended change, then review the diff of the golden files:
    MESHCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/health/test_render.py
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from meshctl.health.registry import (
    Category,
    Check,
    CheckContext,
    CheckFunction,
    CheckOptions,
    Failed,
    Outcome,
    Passed,
    Severity,
    Warned,
)
from meshctl.health.render import LiveTable, render_json, render_short, render_table
from meshctl.health.runner import Report, run_checks

GOLDEN = Path(__file__).parent / "golden"


def _fixed(outcome: Outcome) -> CheckFunction:
    def run(_: CheckContext) -> Outcome:
        return outcome

    return run


def demo_catalogue() -> list[Category]:
    """Every kind of line the renderers print: pass, warning, failure with its own hint, skips (of a check and
    of a whole category) and a suppressed failure (see demo_report)."""
    return [
        Category(
            "local-platform",
            "the local mesh's state",
            (
                Check("MC1001", "the state directory exists and is readable", "run `meshctl up`", _fixed(Passed())),
                Check("MC1002", "a mesh is recorded in the state directory", "run `meshctl up`", _fixed(Passed())),
            ),
        ),
        Category(
            "mesh-existence",
            "the mesh is installed and running",
            (
                Check("MC2001", "the control plane is running", "restart it", _fixed(Passed("meshctl-control-0"))),
                Check(
                    "MC2003",
                    "every process of the mesh is running",
                    "restart it: `meshctl check --fix --yes`",
                    _fixed(
                        Failed(
                            "books-1: proxy (pid 4242) is not running\nratings-0: app (pid 4243) is not running",
                        )
                    ),
                ),
                Check(
                    "MC2004",
                    "the mesh's configuration files are present",
                    "`meshctl down && meshctl up` writes the configuration again",
                    _fixed(Failed("1 file missing: /srv/mesh/control.json\nand more")),
                ),
            ),
            requires=("local-platform",),
        ),
        Category(
            "mesh-identity",
            "the trust anchor and the issuer",
            (
                Check("MC4007", "the issuer is within its validity period", "reissue", _fixed(Passed())),
                Check(
                    "MC4008",
                    "the issuer is valid for at least 60 days",
                    "issue a new issuer from the trust anchor: `meshctl check --fix --yes`",
                    _fixed(
                        Failed("issuer identity.meshctl.cluster.local expires in 12 days, at 2030-01-13 00:00:00 UTC")
                    ),
                    severity=Severity.WARNING,
                    requires=("MC4007",),
                ),
                Check(
                    "MC4009",
                    "the issuer is signed by the trust anchor",
                    "reissue",
                    _fixed(Failed("issuer not signed by a trust anchor", "restore the matching ca.pem")),
                ),
                Check(
                    "MC4010",
                    "a check that needs the signature",
                    "nothing",
                    _fixed(Passed()),
                    requires=("MC4009",),
                ),
            ),
            requires=("local-platform",),
        ),
        Category(
            "control-plane-api",
            "the control plane's API",
            (Check("MC5001", "the control plane API presents its identity", "restart", _fixed(Passed())),),
            requires=("mesh-existence",),
        ),
        Category(
            "prometheus",
            "Prometheus runs and scrapes the mesh",
            (
                Check(
                    "MC6003",
                    "Prometheus scrapes every proxy",
                    "wait",
                    _fixed(Warned("1 proxy not scraped yet")),
                ),
            ),
        ),
    ]


def demo_report() -> Report:
    ctx = CheckContext(CheckOptions(platform="local"))
    return run_checks(demo_catalogue(), ctx, clock=lambda: 100.0, suppress=frozenset({"MC2004"}))


def compare(name: str, rendered: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MESHCTL_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8"), (
        f"{name} changed; if intended, regenerate with "
        "MESHCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/health/test_render.py and review the diff"
    )


def test_table_golden() -> None:
    compare("check.table.txt", render_table(demo_report()))


def test_short_golden() -> None:
    compare("check.short.txt", render_short(demo_report()))


def test_json_golden() -> None:
    compare("check.json", render_json(demo_report()))


def test_json_carries_codes_outcomes_hints_and_numeric_durations() -> None:
    document = json.loads(render_json(demo_report()))
    assert document["success"] is False
    checks = [c for category in document["categories"] for c in category["checks"]]
    assert {c["outcome"] for c in checks} == {"passed", "warned", "failed", "skipped"}
    for check in checks:
        assert check["code"].startswith("MC") and check["hint"] and check["explain"].endswith(check["code"])
        assert isinstance(check["duration_s"], float)
    assert isinstance(document["duration_s"], float)


def test_status_line_is_last_and_reflects_failures() -> None:
    assert render_table(demo_report()).splitlines()[-1] == "Status check results are ×"
    only_warnings = [c for c in demo_catalogue() if c.id == "prometheus"]
    report = run_checks(only_warnings, CheckContext(CheckOptions()))
    assert report.success
    assert render_table(report).splitlines()[-1] == "Status check results are √"
    assert render_short(report).splitlines()[0] == "prometheus"


def test_colour_only_when_asked() -> None:
    report = demo_report()
    assert "\x1b[" not in render_table(report) + render_short(report)
    coloured = render_table(report, color=True)
    assert "\x1b[32m√\x1b[0m" in coloured and "\x1b[33m‼\x1b[0m" in coloured and "\x1b[31m×" in coloured


def test_live_table_without_terminal_prints_the_static_table() -> None:
    stream = io.StringIO()
    live = LiveTable(stream, color=False, live=False)
    report = run_checks(demo_catalogue(), CheckContext(CheckOptions()), live, clock=lambda: 100.0)
    live.finish(report)
    assert stream.getvalue() == render_table(report)


@pytest.mark.parametrize("color", [False, True])
def test_live_table_on_a_terminal_spins_then_settles(color: bool) -> None:
    def slow(_: CheckContext) -> Outcome:
        time.sleep(0.3)  # the check under test is slow; the spinner must turn meanwhile
        return Passed()

    category = Category("slow", "slow", (Check("MC1001", "a slow check", "wait", slow),))
    stream = io.StringIO()
    live = LiveTable(stream, color=color, live=True)
    report = run_checks([category], CheckContext(CheckOptions()), live)
    live.finish(report)
    text = stream.getvalue()
    assert text.startswith("slow\n----\n")
    assert "a slow check" in text and "\x1b[J" in text  # spinner lines were drawn and erased
    assert any(frame in text for frame in "⠙⠹⠸⠼")
    assert text.endswith(render_table(report, color=color).split("----\n", 1)[1])
