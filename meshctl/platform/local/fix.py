"""`meshctl check --fix` on the local platform: remediations for the failures it knows how to repair.

A plan is computed from a report (dry run: it is only printed); `--yes` applies it. Processes are started
with the local platform's own launcher, so a restarted process has the same command line, environment,
log file and process-group discipline as one `meshctl up` started, and mesh.json records it. A proxy or
the control plane restarts with the command `up` uses (so it runs this CLI's version); other processes
with the command recorded for them. A new issuer is issued from the trust anchor with meshctl.control.ca,
and the control plane is restarted to use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import MeshError
from meshctl.health.facts import PROXY_ANSWERS
from meshctl.health.fix import Plan, Remediation
from meshctl.health.registry import CheckContext, Failed, Warned
from meshctl.health.runner import Report
from meshctl.platform.local.facts import LAYOUT, RECORD

if TYPE_CHECKING:
    from meshctl.platform.local.state import ComponentRecord, Layout
    from meshctl.platform.local.up import Launcher

STOP_GRACE_S = 10.0
REISSUE_CODES = ("MC4005", "MC4007", "MC4008", "MC4009")
# What a restart answers: the failure itself and the failures that follow from it.
CONTROL_CODES = ("MC2001", "MC2002", "MC3004", "MC5001", "MC5002", "MC5003", "MC5004", "MC6004", "MC7001")
DEAD_CODES = {
    "proxy": ("MC2003", "MC5004", "MC6003", "MC8002", "MC8004"),
    "prometheus": ("MC6001", "MC6002", "MC6003", "MC6004", "MC8004"),
}


class _Notes:
    """The Reporter the platform's launcher writes to."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def note(self, message: str) -> None:
        self.lines.append(message)


def restart(layout: Layout, pod: str, role: str, *, canonical: bool) -> str:
    """Stop the `role` process of `pod` if it runs, start it again, and record the new pid in mesh.json."""
    from meshctl.platform.local import state
    from meshctl.platform.local.processes import is_alive, stop_processes
    from meshctl.platform.local.up import Launcher

    with state.exclusive(layout, "check --fix"):
        record = state.read_record(layout)
        component = record.component(pod) if record else None
        if record is None or component is None:
            return f"{pod}: no longer in mesh.json; nothing restarted"
        old = next((p for p in component.processes if p.role == role), None)
        if old is None:
            return f"{pod}: has no {role} process; nothing restarted"
        if is_alive(old.pid, old.start_ticks):
            stop_processes([old], grace_s=STOP_GRACE_S)
        index = component.processes.index(old)
        component.processes.remove(old)
        launcher = Launcher(layout, record, _Notes(), sys.executable)
        argv = _canonical_argv(launcher, layout, component, role) if canonical else old.argv
        _, new = launcher.start(component, role, argv or old.argv, Path(old.log).name.removesuffix(".log"))
        component.processes.remove(new)
        component.processes.insert(index, new)  # keep the order `up` recorded
        state.write_record(layout, record)
        return f"{pod}: {role} restarted (pid {new.pid}, log {new.log})"


def _canonical_argv(launcher: Launcher, layout: Layout, component: ComponentRecord, role: str) -> list[str] | None:
    """The command `meshctl up` uses for a proxy or the control plane (None: use the recorded one)."""
    if role == "proxy":
        return launcher.python_module("meshctl.proxy", "--config", str(layout.proxy_config(component.pod)))
    if role == "control":
        return launcher.python_module("meshctl.control", "--config", str(layout.control_json))
    return None


def reissue_issuer(layout: Layout) -> str:
    """A new issuer from the trust anchor (its key must be in the identity directory)."""
    from meshctl.control.ca import generate_issuer
    from meshctl.pki.keys import read_pair, write_pair
    from meshctl.pki.pem import IdentityFiles

    files = IdentityFiles(layout.identity)
    anchor = read_pair(files.anchor_cert, files.anchor_key)
    issuer = generate_issuer(anchor)
    write_pair(files.issuer_cert, files.issuer_key, issuer)
    return f"issued a new issuer valid until {issuer.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"


def _problems(report: Report) -> dict[str, Failed | Warned]:
    return {r.check.code: r.outcome for r in report.results if isinstance(r.outcome, Failed | Warned)}


def plan_fixes(report: Report, ctx: CheckContext) -> Plan:
    """What --fix would do about the report's failures and warnings, in the order it would do it."""
    from meshctl.platform.local.processes import is_alive

    problems = _problems(report)
    if not problems:
        return Plan((), ())
    try:
        layout, record = ctx.get(LAYOUT), ctx.get(RECORD)
    except MeshError:  # no mesh to repair: MC1002 says why
        return Plan((), tuple(problems))
    steps: dict[str, Remediation] = {}

    def add(key: str, codes: tuple[str, ...], summary: str, apply: Callable[[], str]) -> None:
        codes = tuple(c for c in codes if c in problems)
        if not codes:
            return
        found = steps.get(key)
        if found is not None:
            codes = (*found.codes, *(c for c in codes if c not in found.codes))
            summary, apply = found.summary, found.apply
        steps[key] = Remediation(key, codes, summary, apply)

    def restart_step(component: ComponentRecord, role: str, codes: tuple[str, ...], why: str) -> None:
        canonical = role in ("proxy", "control")
        add(
            f"restart:{component.pod}:{role}",
            codes,
            f"restart the {role} of {component.namespace}/{component.pod} ({why})",
            lambda: restart(layout, component.pod, role, canonical=canonical),
        )

    if all(code not in problems for code in ("MC4001", "MC4003")):  # a usable anchor to issue from
        add("reissue", REISSUE_CODES, "issue a new issuer from the trust anchor", lambda: reissue_issuer(layout))
    control = next((c for c in record.components if c.kind == "control-plane"), None)
    if control is not None:
        if "reissue" in steps:
            restart_step(control, "control", steps["reissue"].codes, "to use the new issuer")
        restart_step(control, "control", CONTROL_CODES, "not running" if "MC2001" in problems else "to recover")
    for component in record.components:
        for process in component.processes:
            if component.kind != "control-plane" and not is_alive(process.pid, process.start_ticks):
                codes = DEAD_CODES.get(process.role, ("MC2003",))
                restart_step(component, process.role, codes, "not running")
    answers = ctx.get(PROXY_ANSWERS) if "MC7002" in problems or "MC8005" in problems else []
    for answer in answers:
        owner = record.component(answer.proxy.pod)
        if owner is not None and answer.error is None and answer.version != ctx.options.cli_version:
            restart_step(owner, "proxy", ("MC7002", "MC8005"), f"runs {answer.version}")
    fixed = {code for step in steps.values() for code in step.codes}
    unfixable = tuple(code for code in problems if code not in fixed)
    return Plan(tuple(steps.values()), unfixable)
