"""One `meshctl check` run: select the categories, run them with the right observer, render, and with
`--fix` plan (and with `--yes` apply) the remediations, then check again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from meshctl.cli.style import can_redraw, color_enabled
from meshctl.errors import UsageError
from meshctl.health.registry import (
    CODE_PATTERN,
    Category,
    CheckContext,
    CheckOptions,
    Mode,
    Severity,
    catalogue,
    select,
)
from meshctl.health.render import LiveTable, render_short, report_json
from meshctl.health.runner import Observer, Report, run_checks

if TYPE_CHECKING:
    from meshctl.health.fix import Plan, Remediation
    from meshctl.platform.base import Platform

RECHECK_WAIT_S = 30.0  # after --fix --yes: how long restarted processes get to become ready


@dataclass(frozen=True)
class CheckRequest:
    options: CheckOptions
    output: str  # "table" | "short" | "json"
    wait_s: float = 0.0
    fix: bool = False
    yes: bool = False
    suppress: frozenset[str] = frozenset()  # codes whose failures and warnings do not fail the run
    fail_on: Severity = Severity.ERROR  # WARNING: a warning fails the run too


def suppressed_codes(values: list[str], platform: str) -> frozenset[str]:
    """The codes of `--suppress A --suppress B,C`, each one a check of the platform's catalogue."""
    codes = [code.strip().upper() for value in values for code in value.split(",") if code.strip()]
    malformed = [code for code in codes if not CODE_PATTERN.match(code)]
    if malformed:
        raise UsageError(f"--suppress: {malformed[0]!r} is not a check code", hint="codes look like MC6003")
    known = {check.code for category in catalogue(platform) for check in category.checks}
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise UsageError(
            f"--suppress: no check of the {platform} platform has the code {unknown[0]}",
            hint="`meshctl check explain` lists every code",
        )
    return frozenset(codes)


def modes_for(pre: bool, proxy: bool) -> frozenset[Mode]:
    if pre and proxy:
        raise UsageError(
            "--pre and --proxy cannot be used together", hint="run `meshctl check --pre` before `meshctl up`"
        )
    if pre:
        return frozenset({Mode.PRE})
    return frozenset({Mode.INSTALLED, Mode.PROXY}) if proxy else frozenset({Mode.INSTALLED})


def wants_color(stream: TextIO) -> bool:
    return color_enabled(stream)


class Session:
    def __init__(self, request: CheckRequest, platform: Callable[[], Platform], stdout: TextIO, stderr: TextIO) -> None:
        self.request = request
        self.platform = platform
        self.stdout = stdout
        self.stderr = stderr
        self.color = wants_color(stdout)
        self.failed_codes: list[str] = []  # of the last report, for the exit message

    def categories(self) -> list[Category]:
        name = self.request.options.platform
        try:
            return select(catalogue(name), self.request.options.modes)
        except ModuleNotFoundError:
            raise UsageError(
                f"the {name} platform's checks are not part of this installation",
                hint="run `meshctl check` against the local platform (--platform local)",
            ) from None

    def check(self, wait_s: float) -> tuple[Report, CheckContext]:
        ctx = CheckContext(self.request.options, platform=self.platform)
        observer: Observer = Observer()
        live: LiveTable | None = None
        if self.request.output == "table":
            observer = live = LiveTable(self.stdout, color=self.color, live=can_redraw(self.stdout))
        request = self.request
        report = run_checks(
            self.categories(), ctx, observer, wait_s=wait_s, suppress=request.suppress, fail_on=request.fail_on
        )
        self.failed_codes = [r.check.code for r in report.failing]
        if live is not None:
            live.finish(report)
        return report, ctx

    def run(self) -> int:
        """Exit code: 0 when no check failed (warnings alone pass unless --fail-on warning), 1 otherwise;
        suppressed checks never fail the run.

        With --fix --yes the first pass shows the mesh as it is (no waiting: the failures are what gets
        fixed) and --wait applies to the check after the remediations.
        """
        applying = self.request.fix and self.request.yes
        report, ctx = self.check(0.0 if applying else self.request.wait_s)
        if self.request.fix:
            return self._fix(report, ctx)
        self._emit(report)
        return 0 if report.success else 1

    def _emit(self, report: Report, fix: dict[str, Any] | None = None) -> None:
        if self.request.output == "json":
            document = report_json(report)
            if fix is not None:
                document["fix"] = fix
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        elif self.request.output == "short":
            self.stdout.write(render_short(report, self.color))
        self.stdout.flush()

    def _fix(self, report: Report, ctx: CheckContext) -> int:
        from meshctl.health.fix import apply_plan, plan_fixes, render_plan

        plan = plan_fixes(report, ctx)
        text_out = self.stderr if self.request.output == "json" else self.stdout
        dry_run = not self.request.yes
        if dry_run or not plan:
            if self.request.output != "json":
                self._emit(report)
            text_out.write("\n" + render_plan(plan, dry_run=dry_run))
            if self.request.output == "json":
                self._emit(report, _plan_json(plan, dry_run=dry_run, results={}))
            return 0 if report.success else 1
        if self.request.output != "json":
            self._emit(report)
        text_out.write("\n" + render_plan(plan, dry_run=False))
        results: dict[str, str] = {}

        def done(remediation: Remediation, outcome: str) -> None:
            results[remediation.key] = outcome
            text_out.write(f"  {outcome}\n")
            text_out.flush()

        failures = apply_plan(plan, done)
        text_out.write(
            f"\nChecking again (waiting up to {max(self.request.wait_s, RECHECK_WAIT_S):g}s for recovery)\n\n"
        )
        text_out.flush()
        final, _ = self.check(max(self.request.wait_s, RECHECK_WAIT_S))
        self._emit(final, _plan_json(plan, dry_run=False, results=results))
        if failures:  # a fix that did not take is a failure, whatever a re-check reads
            noun = "remediation" if len(failures) == 1 else "remediations"
            self.stderr.write(f"--fix: {len(failures)} {noun} failed: {'; '.join(failures)}\n")
            return 1
        return 0 if final.success else 1


def _plan_json(plan: Plan, *, dry_run: bool, results: dict[str, str]) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "remediations": [
            {"codes": list(r.codes), "summary": r.summary, "result": results.get(r.key)} for r in plan.remediations
        ],
        "unfixable": list(plan.unfixable),
    }
