"""Run the categories of a catalogue in order and report every result to an observer.

Within a category the checks run concurrently, each attempt in a daemon thread of its own, so a check
that hangs is abandoned at its timeout and can never keep the CLI from exiting. A check starts once the
checks it requires are done; a category whose required category failed is skipped as a whole. Under
`--wait` a check that does not pass is tried again every `retry_interval` until it passes or the deadline
is reached; the observer hears of each retry (the table renderer turns that into a live spinner).

`--suppress CODE` keeps a check in the run and in the output, marked suppressed: its failure or warning no
longer counts against the run (checks that require it still see it did not pass). `--fail-on warning`
makes warnings count as failures do.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from meshctl.errors import MeshError
from meshctl.health.registry import (
    Category,
    Check,
    CheckContext,
    Failed,
    Outcome,
    Passed,
    Severity,
    Skipped,
    Warned,
)

RETRY_INTERVAL_S = 1.0
TICK_S = 0.1  # spinner frame period while an observer wants ticks


@dataclass(frozen=True)
class CheckResult:
    check: Check
    outcome: Outcome
    duration_s: float  # from the first attempt's start to the last attempt's end
    attempts: int
    suppressed: bool = False  # a failure or warning `--suppress` named: shown, not held against the run

    @property
    def ok(self) -> bool:
        """Passed or warned: what checks that require this one wait for."""
        return not isinstance(self.outcome, Failed)

    def fails_run(self, fail_on: Severity) -> bool:
        """Whether this result makes the run fail (exit 1)."""
        if self.suppressed:
            return False
        return isinstance(self.outcome, Failed) or (fail_on is Severity.WARNING and isinstance(self.outcome, Warned))


@dataclass(frozen=True)
class CategoryResult:
    category: Category
    results: tuple[CheckResult, ...]
    duration_s: float
    skipped: str | None = None  # why the whole category did not run

    @property
    def failed(self) -> bool:
        return any(isinstance(r.outcome, Failed) for r in self.results)


@dataclass(frozen=True)
class Report:
    platform: str
    categories: tuple[CategoryResult, ...]
    duration_s: float
    fail_on: Severity = Severity.ERROR  # `--fail-on`: the least severe outcome that fails the run

    @property
    def results(self) -> list[CheckResult]:
        return [r for c in self.categories for r in c.results]

    @property
    def failing(self) -> list[CheckResult]:
        """The results that make the run fail, in order."""
        return [r for r in self.results if r.fails_run(self.fail_on)]

    @property
    def success(self) -> bool:
        return not self.failing

    @property
    def skipped(self) -> list[CheckResult]:
        return [r for r in self.results if isinstance(r.outcome, Skipped)]

    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "warned": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            counts[type(result.outcome).__name__.lower()] += 1
        counts["suppressed"] = sum(1 for r in self.results if r.suppressed)
        return counts


class Observer:
    """Hears of progress as it happens; every method is a no-op here, renderers override what they need."""

    wants_ticks = False  # True: tick() about every TICK_S while checks run (spinners)

    def category_started(self, category: Category) -> None:
        pass

    def check_started(self, category: Category, check: Check, attempt: int) -> None:
        pass

    def check_retrying(self, category: Category, check: Check, outcome: Outcome, attempt: int) -> None:
        pass

    def check_finished(self, category: Category, result: CheckResult) -> None:
        pass

    def category_finished(self, result: CategoryResult) -> None:
        pass

    def tick(self) -> None:
        pass


# --- one attempt --------------------------------------------------------------------------------------------


def rescue(check: Check, exc: BaseException) -> Outcome:
    """The one place where an exception escaping a check becomes an outcome."""
    if isinstance(exc, MeshError):
        return Failed(exc.message, exc.hint)
    if isinstance(exc, TimeoutError):
        return Failed(f"timed out: {exc}" if str(exc) else "timed out")
    return Failed(f"check crashed: {type(exc).__name__}: {exc}", f"report this: meshctl check explain {check.code}")


def execute(check: Check, ctx: CheckContext) -> Outcome:
    """Run a check once, in the calling thread; never raises."""
    try:
        value = check.run(ctx)
        if isinstance(value, Awaitable):
            import asyncio  # only for async checks: the import is not free

            value = asyncio.run(_awaited(value))
    except Exception as exc:
        return rescue(check, exc)
    if not isinstance(value, Passed | Warned | Failed | Skipped):
        return Failed(f"check returned {type(value).__name__}, not an outcome")
    return value


async def _awaited(value: Awaitable[Outcome]) -> Outcome:
    return await value


def apply_severity(check: Check, outcome: Outcome) -> Outcome:
    if check.severity is Severity.WARNING and isinstance(outcome, Failed):
        return Warned(outcome.reason, outcome.hint)
    return outcome


@dataclass
class _State:
    check: Check
    started: float | None = None
    attempt: int = 0
    attempt_deadline: float = 0.0
    retry_at: float | None = None
    ctx: CheckContext | None = None
    result: CheckResult | None = None


Completion = tuple[str, int, Outcome]  # code, attempt, outcome


class Runner:
    def __init__(
        self,
        ctx: CheckContext,
        observer: Observer | None = None,
        *,
        wait_s: float = 0.0,
        retry_interval_s: float = RETRY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        suppress: frozenset[str] = frozenset(),
        fail_on: Severity = Severity.ERROR,
    ) -> None:
        self.ctx = ctx
        self.observer = observer or Observer()
        self.suppress = suppress
        self.fail_on = fail_on
        self.wait_s = wait_s
        self.retry_interval_s = retry_interval_s
        self.clock = clock
        self.done: dict[str, CheckResult] = {}
        self.deadline = 0.0  # end of --wait, set when a run starts

    def run(self, categories: Iterable[Category]) -> Report:
        t0 = self.clock()
        self.deadline = t0 + self.wait_s
        finished: list[CategoryResult] = []
        for category in categories:
            self.observer.category_started(category)
            failed = [r for r in finished if r.category.id in category.requires and (r.failed or r.skipped)]
            if failed:
                result = self._skip(category, f"requires {failed[0].category.id}, which did not pass")
            else:
                result = self._run_category(category)
            finished.append(result)
            self.observer.category_finished(result)
        return Report(self.ctx.options.platform, tuple(finished), self.clock() - t0, self.fail_on)

    def _skip(self, category: Category, reason: str) -> CategoryResult:
        results = tuple(CheckResult(c, Skipped(reason), 0.0, 0) for c in category.checks)
        for result in results:
            self.done[result.check.code] = result
        return CategoryResult(category, results, 0.0, skipped=reason)

    def _run_category(self, category: Category) -> CategoryResult:
        t0 = self.clock()
        states = {c.code: _State(c) for c in category.checks}
        completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        while any(s.result is None for s in states.values()):
            now = self.clock()
            for state in states.values():
                if state.result is None and state.started is None:
                    self._start_if_ready(category, state, completions)
                elif state.result is None and state.retry_at is not None and now >= state.retry_at:
                    self._attempt(category, state, completions)
            if all(s.result is not None for s in states.values()):
                break
            try:
                code, attempt, outcome = completions.get(timeout=self._next_wakeup(states))
            except queue.Empty:
                pass
            else:
                state = states[code]
                if state.result is None and attempt == state.attempt and state.retry_at is None:
                    self._settle(category, state, outcome)
            now = self.clock()
            for state in states.values():
                running = state.result is None and state.retry_at is None and state.started is not None
                if running and now >= state.attempt_deadline:
                    self._settle(category, state, Failed(f"timed out after {state.check.timeout:g}s"))
            if self.observer.wants_ticks:
                self.observer.tick()
        results = tuple(states[c.code].result for c in category.checks)
        return CategoryResult(category, tuple(r for r in results if r is not None), self.clock() - t0)

    def _start_if_ready(self, category: Category, state: _State, completions: queue.SimpleQueue[Completion]) -> None:
        category_codes = {c.code for c in category.checks}
        # A required check that is not part of this run (its category was not selected) does not block.
        if any(code in category_codes and code not in self.done for code in state.check.requires):
            return
        done = [self.done[code] for code in state.check.requires if code in self.done]
        blocked = [r.check.code for r in done if not r.ok or isinstance(r.outcome, Skipped)]
        if blocked:
            state.started = self.clock()
            self._finish(category, state, Skipped(f"requires {blocked[0]}, which did not pass"))
            return
        self._attempt(category, state, completions)

    def _attempt(self, category: Category, state: _State, completions: queue.SimpleQueue[Completion]) -> None:
        now = self.clock()
        if state.started is None:
            state.started = now
        state.attempt += 1
        state.retry_at = None
        state.attempt_deadline = now + state.check.timeout
        # The first attempt shares the run's facts; a retry looks at the world afresh.
        state.ctx = self.ctx if state.attempt == 1 else self.ctx.fresh()
        self.observer.check_started(category, state.check, state.attempt)
        check, ctx, attempt = state.check, state.ctx, state.attempt

        def work() -> None:
            completions.put((check.code, attempt, execute(check, ctx)))

        threading.Thread(target=work, name=f"check-{check.code}", daemon=True).start()

    def _settle(self, category: Category, state: _State, outcome: Outcome) -> None:
        outcome = apply_severity(state.check, outcome)
        now = self.clock()
        # A suppressed check's answer holds nothing up, so --wait does not wait for it.
        retry = state.check.retry and not isinstance(outcome, Passed | Skipped)
        retry = retry and state.check.code not in self.suppress
        if retry and now + self.retry_interval_s < self.deadline:
            state.retry_at = now + self.retry_interval_s
            self.observer.check_retrying(category, state.check, outcome, state.attempt)
            return
        if isinstance(outcome, Passed) and state.ctx is not None and state.ctx is not self.ctx:
            self.ctx.adopt(state.ctx)
        self._finish(category, state, outcome)

    def _finish(self, category: Category, state: _State, outcome: Outcome) -> None:
        started = state.started if state.started is not None else self.clock()
        suppressed = state.check.code in self.suppress and isinstance(outcome, Failed | Warned)
        state.result = CheckResult(state.check, outcome, max(0.0, self.clock() - started), state.attempt, suppressed)
        self.done[state.check.code] = state.result
        self.observer.check_finished(category, state.result)

    def _next_wakeup(self, states: dict[str, _State]) -> float:
        now = self.clock()
        running = [s for s in states.values() if s.result is None and s.started is not None]
        moments = [s.attempt_deadline for s in running if s.retry_at is None]
        moments += [s.retry_at for s in running if s.retry_at is not None]
        wakeup = max(0.0, min(moments, default=now + TICK_S) - now)
        return min(wakeup, TICK_S) if self.observer.wants_ticks else wakeup


def run_checks(
    categories: Iterable[Category],
    ctx: CheckContext,
    observer: Observer | None = None,
    *,
    wait_s: float = 0.0,
    retry_interval_s: float = RETRY_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    suppress: frozenset[str] = frozenset(),
    fail_on: Severity = Severity.ERROR,
) -> Report:
    """Run the categories in order; returns every result (the observer has seen them as they came)."""
    runner = Runner(
        ctx, observer, wait_s=wait_s, retry_interval_s=retry_interval_s, clock=clock, suppress=suppress, fail_on=fail_on
    )
    return runner.run(categories)
