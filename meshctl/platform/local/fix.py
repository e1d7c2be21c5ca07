"""`meshctl check --fix` on the local platform: remediations for the failures it knows how to repair.

A plan is computed from a report (dry run: it is only printed); `--yes` applies it. Processes are started
with the local platform's own launcher, so a restarted process has the same command line, environment,
log file and process-group discipline as one `meshctl up` started, and mesh.json records it. A proxy or
the control plane restarts with the command `up` uses (so it runs this CLI's version); other processes
with the command recorded for them. A new issuer is issued from the trust anchor with meshctl.control.ca,
and the control plane is restarted to use it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
    from meshctl.platform.local.state import ComponentRecord, Layout, ProcessRecord
    from meshctl.platform.local.up import Launcher

STOP_GRACE_S = 10.0
SERVE_WAIT_S = 20.0  # a restarted process must listen within this
SETTLE_S = 0.5
# The address (in the component's record) a restarted process must listen on, by role.
SERVES_ON = {"control": "admin", "proxy": "admin", "prometheus": "web", "app": "app"}
_running: list[subprocess.Popen[bytes]] = []
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
        child, new = launcher.start(component, role, argv or old.argv, Path(old.log).name.removesuffix(".log"))
        component.processes.remove(new)
        component.processes.insert(index, new)  # keep the order `up` recorded
        state.write_record(layout, record)
        _running.append(child)  # it outlives this command, as `up`'s do: not a leaked child
        where = _confirm_serving(child, new, component.addresses.get(SERVES_ON.get(role, "")))
        return f"{pod}: {role} restarted (pid {new.pid}{where}, log {new.log})"


def _confirm_serving(child: subprocess.Popen[bytes], process: ProcessRecord, address: str | None) -> str:
    """A restart counts once the new process itself listens on its address and is still alive a moment
    later; a re-check could read another process's port or a state from before the restart."""
    from meshctl.platform.local.processes import log_tail

    deadline = time.monotonic() + SERVE_WAIT_S
    listening = address is None
    while child.poll() is None and not listening and time.monotonic() < deadline:
        listening = listens(child.pid, address or "")
        if not listening:
            time.sleep(0.1)
    if child.poll() is None:
        time.sleep(SETTLE_S)  # a process that binds and then fails exits within this
    if child.poll() is not None:
        last = (log_tail(process.log) or "").strip().splitlines()
        raise MeshError(
            f"{process.role} exited with code {child.returncode} right after the restart"
            + (f": {last[-1].strip()}" if last else ""),
            hint=f"see its log: {process.log}",
        )
    if not listening:
        raise MeshError(
            f"{process.role} (pid {child.pid}) does not listen on {address} {SERVE_WAIT_S:g}s after the restart",
            hint=f"see {process.log}",
        )
    return f", listening on {address}" if address else ""


def listens(pid: int, address: str) -> bool:
    """True when process `pid` holds the listening TCP socket of `address` ("127.0.0.1:8086")."""
    host, _, port = address.rpartition(":")
    try:
        local = f"{socket.inet_aton(host)[::-1].hex().upper()}:{int(port):04X}"
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
        if not inodes:
            return False
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    except (OSError, ValueError):
        return False


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
