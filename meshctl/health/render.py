"""Renderers of a check report: the table (as in `linkerd check`), short (problems only) and JSON.

The renderers are pure functions of a Report; `LiveTable` is the observer that prints the same table as
the checks complete, with a spinner per running check when the output is a terminal. Colour is ANSI,
only when asked for (the CLI asks only on a TTY); the text is the same either way.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from meshctl.cli import style
from meshctl.cli.style import Tone
from meshctl.health.registry import Category, Check, Failed, Outcome, Passed, Skipped, Warned, outcome_name
from meshctl.health.runner import CategoryResult, CheckResult, Observer, Report

PASS, WARN, FAIL, SKIP, SUPPRESSED = "√", "‼", "×", "-", "~"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# Tones of the one palette (meshctl.cli.style), under the names this module has always used.
_GREEN, _YELLOW, _RED, _DIM = Tone.GOOD, Tone.WARN, Tone.ALERT, Tone.DIM
INDENT = "    "


def explain_command(code: str) -> str:
    return f"meshctl check explain {code}"


def hint_of(check: Check, outcome: Outcome) -> str:
    specific = outcome.hint if isinstance(outcome, Warned | Failed) else None
    return specific or check.hint


_Paint = style.Palette


def check_lines(result: CheckResult, color: bool = False) -> list[str]:
    """The lines of one finished check: glyph and description, then reason, hint and where to read more."""
    paint = _Paint(color)
    check, outcome = result.check, result.outcome
    if isinstance(outcome, Passed):
        return [f"{paint(_GREEN, PASS)} {check.description}"]
    if isinstance(outcome, Skipped):
        return [paint(_DIM, f"{SKIP} {check.description} (skipped: {outcome.reason})")]
    if result.suppressed:
        first = (outcome.reason.splitlines() or [""])[0]
        return [paint(_DIM, f"{SUPPRESSED} {check.description} (suppressed {check.code}: {first})")]
    glyph = paint(_YELLOW, WARN) if isinstance(outcome, Warned) else paint(_RED, FAIL)
    lines = [f"{glyph} {check.description}"]
    lines += [INDENT + line for line in outcome.reason.splitlines() or [""]]
    lines += [INDENT + line for line in hint_of(check, outcome).splitlines()]
    lines.append(paint(_DIM, f"{INDENT}see {explain_command(check.code)}"))
    return lines


def header_lines(category: Category) -> list[str]:
    return [category.id, "-" * len(category.id)]


def category_lines(result: CategoryResult, color: bool = False) -> list[str]:
    lines = header_lines(result.category)
    for check_result in result.results:  # a skipped category lists its checks, each with why
        lines += check_lines(check_result, color)
    return [*lines, ""]


def status_line(report: Report, color: bool = False) -> str:
    paint = _Paint(color)
    glyph = paint(_GREEN, PASS) if report.success else paint(_RED, FAIL)
    return f"Status check results are {glyph}"


def render_table(report: Report, color: bool = False) -> str:
    lines = [line for category in report.categories for line in category_lines(category, color)]
    return "\n".join([*lines, status_line(report, color)]) + "\n"


def render_short(report: Report, color: bool = False) -> str:
    """Only the warnings and failures, under their category, then the status line."""
    lines: list[str] = []
    for category in report.categories:
        problems = [r for r in category.results if isinstance(r.outcome, Warned | Failed) and not r.suppressed]
        if problems:
            lines += header_lines(category.category)
            for result in problems:
                lines += check_lines(result, color)
            lines.append("")
    trailers = ((report.skipped, "skipped (they need the failing ones)"), (_suppressed(report), "suppressed"))
    for results, what in trailers:
        if results:
            noun = "check" if len(results) == 1 else "checks"
            lines.append(_Paint(color)(_DIM, f"{len(results)} {noun} {what}:"))
            lines += [line for result in results for line in check_lines(result, color)]
            lines.append("")
    return "\n".join([*lines, status_line(report, color)]) + "\n"


def _suppressed(report: Report) -> list[CheckResult]:
    return [r for r in report.results if r.suppressed]


def report_json(report: Report) -> dict[str, Any]:
    """One JSON document: every category and check with its code, outcome, reason, hint and duration."""
    return {
        "success": report.success,
        "fail_on": report.fail_on.value,
        "platform": report.platform,
        "duration_s": round(report.duration_s, 3),
        "counts": report.counts(),
        "categories": [
            {
                "id": category.category.id,
                "name": category.category.name,
                "outcome": _category_outcome(category),
                "skipped": category.skipped,
                "duration_s": round(category.duration_s, 3),
                "checks": [_check_json(result) for result in category.results],
            }
            for category in report.categories
        ],
    }


def _category_outcome(category: CategoryResult) -> str:
    names = {outcome_name(r.outcome) for r in category.results}
    for name in ("failed", "warned", "passed"):
        if name in names:
            return name
    return "skipped"


def _check_json(result: CheckResult) -> dict[str, Any]:
    outcome = result.outcome
    return {
        "code": result.check.code,
        "description": result.check.description,
        "severity": result.check.severity.value,
        "outcome": outcome_name(outcome),
        "suppressed": result.suppressed,
        "reason": None if isinstance(outcome, Passed) else outcome.reason,
        "detail": (outcome.detail or None) if isinstance(outcome, Passed) else None,
        "hint": hint_of(result.check, outcome),
        "explain": explain_command(result.check.code),
        "duration_s": round(result.duration_s, 3),
        "attempts": result.attempts,
    }


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"


# --- live output ------------------------------------------------------------------------------------------


class LiveTable(Observer):
    """Prints each category as it completes; on a terminal, a spinner line per running check meanwhile."""

    def __init__(self, stream: TextIO, *, color: bool, live: bool) -> None:
        self.stream = stream
        self.color = color
        self.wants_ticks = live
        self._frame = 0
        self._drawn_rows = 0
        self._category: Category | None = None
        self._running: dict[str, str] = {}  # code -> note ("" or the last reason while retrying)
        self._finished: dict[str, CheckResult] = {}

    def category_started(self, category: Category) -> None:
        self._category, self._running, self._finished = category, {}, {}
        if self.wants_ticks:
            self._write("\n".join(header_lines(category)) + "\n")

    def check_started(self, category: Category, check: Check, attempt: int) -> None:
        self._running.setdefault(check.code, "")

    def check_retrying(self, category: Category, check: Check, outcome: Outcome, attempt: int) -> None:
        reason = outcome.reason if isinstance(outcome, Warned | Failed | Skipped) else ""
        self._running[check.code] = reason.splitlines()[0] if reason else ""

    def check_finished(self, category: Category, result: CheckResult) -> None:
        self._running.pop(result.check.code, None)
        self._finished[result.check.code] = result

    def tick(self) -> None:
        self._frame = (self._frame + 1) % len(SPINNER)
        self._redraw(self._block_lines())

    def category_finished(self, result: CategoryResult) -> None:
        lines = category_lines(result, self.color)
        if self.wants_ticks:
            self._redraw(lines[2:])  # the header is already on screen
            self._drawn_rows = 0
        else:
            self._write("\n".join(lines) + "\n")
        self._category = None

    def finish(self, report: Report) -> None:
        self._write(status_line(report, self.color) + "\n")

    def _block_lines(self) -> list[str]:
        if self._category is None:
            return []
        lines: list[str] = []
        spinner = SPINNER[self._frame]
        for check in self._category.checks:
            if check.code in self._finished:
                lines += check_lines(self._finished[check.code], self.color)
            elif check.code in self._running:
                note = self._running[check.code]
                suffix = _Paint(self.color)(_DIM, f"  (retrying: {note})") if note else ""
                lines.append(f"{spinner} {check.description}{suffix}")
        return lines

    def _redraw(self, lines: list[str]) -> None:
        width = style.width(self.stream)
        erase = f"\x1b[{self._drawn_rows}F\x1b[J" if self._drawn_rows else "\x1b[J"
        self._write(erase + "".join(line + "\n" for line in lines))
        self._drawn_rows = sum(max(1, -(-_visible_length(line) // width)) for line in lines)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


_visible_length = style.visible_length
