"""`--fix` planning from a report and a mesh record (no process is started here), and issuer re-issue."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshctl.control.ca import ensure_identity_material, load_issuer
from meshctl.health.fix import Plan, Remediation, apply_plan, plan_fixes, render_plan
from meshctl.health.registry import Check, CheckContext, CheckOptions, Failed, Outcome, Passed, Warned, catalogue
from meshctl.health.runner import CategoryResult, CheckResult, Report
from meshctl.pki.pem import IdentityFiles, read_certificates
from meshctl.platform.local import state
from meshctl.platform.local.fix import reissue_issuer
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord

DEAD_PID = 4_194_000  # above any pid_max default in use: never a live process


def checks() -> dict[str, Check]:
    return {c.code: c for category in catalogue("local") for c in category.checks}


def report(**outcomes: Outcome) -> Report:
    known = checks()
    results = tuple(CheckResult(known[code], outcome, 0.0, 1) for code, outcome in outcomes.items())
    category = catalogue("local")[0]
    return Report("local", (CategoryResult(category, results, 0.0),), 0.0)


def process(role: str, pid: int, start_ticks: int, home: Path, name: str) -> ProcessRecord:
    return ProcessRecord(role, pid, start_ticks, str(home / "logs" / f"{name}.log"), ["/bin/true"])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from meshctl.platform.local.processes import proc_stat

    layout = Layout(tmp_path / "home")
    layout.create()
    ensure_identity_material(layout.identity)
    me = proc_stat(os.getpid())
    assert me is not None
    alive = (os.getpid(), me.start_ticks)  # a live process that is certainly ours
    record = MeshRecord(
        started_at="2030-01-01T00:00:00Z", up_pid=1, home=str(layout.home), subnet="127.90.0.0/16", demo=True
    )
    record.state = "running"
    record.components = [
        ComponentRecord(
            "meshctl-control-0",
            "control-plane",
            "meshctl-system",
            "meshctl-control",
            "meshctl-control-0",
            {"api": "127.90.0.2:8086", "admin": "127.90.0.2:9996"},
            processes=[process("control", *alive, layout.home, "control")],
        ),
        ComponentRecord(
            "prometheus-0",
            "prometheus",
            "meshctl-system",
            "prometheus",
            "prometheus-0",
            {"web": "127.90.0.3:9090"},
            processes=[process("prometheus", DEAD_PID, -1, layout.home, "prometheus")],
        ),
        ComponentRecord(
            "books-1",
            "workload",
            "booksapp",
            "books",
            "books-1",
            {"admin": "127.90.3.2:4191"},
            processes=[
                process("app", *alive, layout.home, "books-1"),
                process("proxy", DEAD_PID, -1, layout.home, "books-1.proxy"),
            ],
        ),
    ]
    state.write_record(layout, record)
    return layout.home


def context(home: Path) -> CheckContext:
    from meshctl.platform.local.platform import LocalPlatform

    return CheckContext(CheckOptions(home=home, cli_version="0.1.0"), platform=lambda: LocalPlatform(home))


def test_nothing_to_fix_on_a_healthy_report(home: Path) -> None:
    plan = plan_fixes(report(MC2003=Passed()), context(home))
    assert not plan and plan.unfixable == ()
    assert render_plan(plan, dry_run=True) == "Nothing to fix.\n"


def test_dead_processes_are_restarted_with_their_consequences(home: Path) -> None:
    problems = report(
        MC2003=Failed("books-1: proxy is not running"),
        MC6001=Failed("prometheus-0 is not running"),
        MC6003=Failed("not scraped"),
        MC8002=Failed("not ready"),
        MC3003=Failed("bad resource"),
    )
    plan = plan_fixes(problems, context(home))
    summaries = [r.summary for r in plan.remediations]
    assert summaries == [
        "restart the prometheus of meshctl-system/prometheus-0 (not running)",
        "restart the proxy of booksapp/books-1 (not running)",
    ]
    assert plan.remediations[1].codes == ("MC2003", "MC6003", "MC8002")
    assert plan.unfixable == ("MC3003",)
    text = render_plan(plan, dry_run=True)
    assert text.startswith("Remediations (dry run: add --yes to apply them):\n")
    assert "--fix cannot repair MC3003" in text


def test_an_expiring_issuer_is_reissued_then_the_control_plane_restarted(home: Path) -> None:
    plan = plan_fixes(report(MC4008=Warned("expires in 9 days")), context(home))
    assert [r.key for r in plan.remediations] == ["reissue", "restart:meshctl-control-0:control"]
    assert plan.remediations[1].summary.endswith("(to use the new issuer)")


def test_no_reissue_from_an_expired_anchor(home: Path) -> None:
    plan = plan_fixes(report(MC4003=Failed("anchor expired"), MC4007=Failed("issuer expired")), context(home))
    assert not plan and set(plan.unfixable) == {"MC4003", "MC4007"}


def test_without_a_mesh_nothing_can_be_fixed(tmp_path: Path) -> None:
    plan = plan_fixes(report(MC1002=Failed("no mesh")), context(tmp_path))
    assert not plan and plan.unfixable == ("MC1002",)


def test_reissue_issuer_signs_a_new_issuer_with_the_anchor(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    ensure_identity_material(layout.identity)
    files = IdentityFiles(layout.identity)
    before = read_certificates(files.issuer_cert)[0]
    message = reissue_issuer(layout)
    issuer, anchors = load_issuer(layout.identity)  # raises unless the new issuer chains to the anchor
    assert issuer.cert.serial_number != before.serial_number
    assert anchors and message.startswith("issued a new issuer valid until")


def test_apply_plan_reports_each_step_and_keeps_going() -> None:
    from meshctl.errors import MeshError

    def broken() -> str:
        raise MeshError("cannot")

    plan = Plan(
        (Remediation("a", ("MC2003",), "first", broken), Remediation("b", ("MC6001",), "second", lambda: "done")),
        (),
    )
    seen: list[tuple[str, str]] = []
    errors = apply_plan(plan, lambda r, outcome: seen.append((r.key, outcome)))
    assert seen == [("a", "failed: cannot"), ("b", "done")]
    assert errors == ["first: failed: cannot"]
