"""`meshctl check --fix`: the plan of remediations, applying it and printing it, for any platform.

What a platform can repair is its own business: `FIXERS` names, per platform, the function that plans
remediations from a report (imported lazily, as the catalogues are); a platform without one has nothing
to propose (and `--fix` is refused there by capability before any check runs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from meshctl.errors import MeshError
from meshctl.health.registry import CheckContext
from meshctl.health.runner import Report

# Each platform's planner, "module:function" taking (report, ctx) and returning a Plan.
FIXERS: dict[str, str] = {
    "local": "meshctl.platform.local.fix:plan_fixes",
}


@dataclass(frozen=True)
class Remediation:
    key: str  # what it acts on, e.g. "restart:books-1:proxy": one remediation per key
    codes: tuple[str, ...]  # the checks it answers
    summary: str  # one line for the plan
    apply: Callable[[], str] = field(compare=False)  # does it; returns what was done


@dataclass(frozen=True)
class Plan:
    remediations: tuple[Remediation, ...]
    unfixable: tuple[str, ...]  # codes that failed and that --fix cannot repair

    def __bool__(self) -> bool:
        return bool(self.remediations)


def plan_fixes(report: Report, ctx: CheckContext) -> Plan:
    """What --fix would do about the report's problems on the checked platform."""
    target = FIXERS.get(ctx.options.platform)
    if target is None:
        codes = tuple(r.check.code for r in report.results if not r.ok)
        return Plan((), codes)
    module_name, _, function = target.partition(":")
    planner: Callable[[Report, CheckContext], Plan] = getattr(importlib.import_module(module_name), function)
    return planner(report, ctx)


def apply_plan(plan: Plan, on_step: Callable[[Remediation, str], None]) -> list[str]:
    """Apply every remediation in order; a failing one is reported and the rest still run. Returns errors."""
    errors: list[str] = []
    for remediation in plan.remediations:
        try:
            done = remediation.apply()
        except MeshError as exc:
            done = f"failed: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")
            errors.append(f"{remediation.summary}: {done}")
        except OSError as exc:
            done = f"failed: {exc}"
            errors.append(f"{remediation.summary}: {done}")
        on_step(remediation, done)
    return errors


def render_plan(plan: Plan, *, dry_run: bool) -> str:
    if not plan and not plan.unfixable:
        return "Nothing to fix.\n"
    lines = [("Remediations (dry run: add --yes to apply them):" if dry_run else "Applying:")] if plan else []
    for remediation in plan.remediations:
        lines.append(f"  {remediation.summary}  [{', '.join(remediation.codes)}]")
    if plan.unfixable:
        codes = ", ".join(plan.unfixable)
        lines.append(f"--fix cannot repair {codes}: see `meshctl check explain CODE` for each")
    return "\n".join(lines) + "\n"
