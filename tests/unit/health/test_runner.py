"""The runner with in-memory checks: outcomes, severities, timeouts, requirements, concurrency, --wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from meshctl.errors import UnreachableError
from meshctl.health.registry import (
    Category,
    Check,
    CheckContext,
    CheckFunction,
    CheckOptions,
    Fact,
    Failed,
    Outcome,
    Passed,
    Severity,
    Skipped,
    Warned,
)
from meshctl.health.runner import CategoryResult, CheckResult, Observer, Report, run_checks


def ctx() -> CheckContext:
    return CheckContext(CheckOptions())


def passing(_: CheckContext) -> Outcome:
    return Passed()


def failing(_: CheckContext) -> Outcome:
    return Failed("it is broken", "repair it")


def make(code: str, run: CheckFunction = passing, **kwargs: object) -> Check:
    return Check(code, f"check {code}", f"hint {code}", run, **kwargs)  # type: ignore[arg-type]


def run(*categories: Category, wait_s: float = 0.0, observer: Observer | None = None) -> Report:
    return run_checks(list(categories), ctx(), observer, wait_s=wait_s, retry_interval_s=0.01)


def outcomes(report: Report) -> dict[str, Outcome]:
    return {r.check.code: r.outcome for r in report.results}


def test_outcomes_and_success() -> None:
    report = run(Category("a", "a", (make("MC1001"), make("MC1002", failing))))
    assert outcomes(report) == {"MC1001": Passed(), "MC1002": Failed("it is broken", "repair it")}
    assert not report.success
    assert report.counts() == {"passed": 1, "warned": 0, "failed": 1, "skipped": 0, "suppressed": 0}


def test_warning_severity_turns_failure_into_warning_and_passes_the_run() -> None:
    report = run(Category("a", "a", (make("MC1001", failing, severity=Severity.WARNING),)))
    assert outcomes(report)["MC1001"] == Warned("it is broken", "repair it")
    assert report.success


def test_exceptions_become_failed_outcomes() -> None:
    def unreachable(_: CheckContext) -> Outcome:
        raise UnreachableError("cannot reach it", hint="start it")

    def crash(_: CheckContext) -> Outcome:
        raise KeyError("boom")

    def wrong_type(_: CheckContext) -> Outcome:
        return "fine"  # type: ignore[return-value]

    report = run(Category("a", "a", (make("MC1001", unreachable), make("MC1002", crash), make("MC1003", wrong_type))))
    found = outcomes(report)
    assert found["MC1001"] == Failed("cannot reach it", "start it")
    assert isinstance(found["MC1002"], Failed) and "KeyError" in found["MC1002"].reason
    assert isinstance(found["MC1003"], Failed) and "not an outcome" in found["MC1003"].reason


def test_async_checks_run_too() -> None:
    async def later(_: CheckContext) -> Outcome:
        return Passed("async")

    assert outcomes(run(Category("a", "a", (make("MC1001", later),))))["MC1001"] == Passed("async")


def test_a_hanging_check_fails_at_its_timeout_and_the_others_still_finish() -> None:
    release = threading.Event()

    def hang(_: CheckContext) -> Outcome:
        release.wait(10)
        return Passed()

    try:
        started = time.monotonic()
        report = run(Category("a", "a", (make("MC1001", hang, timeout=0.2), make("MC1002"))))
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert outcomes(report)["MC1001"] == Failed("timed out after 0.2s")
    assert outcomes(report)["MC1002"] == Passed()
    assert elapsed < 5  # bounded by the timeout, not by the hanging check


def test_checks_of_a_category_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=3)

    def meet(_: CheckContext) -> Outcome:
        barrier.wait()  # only passes when all three run at the same time
        return Passed()

    report = run(Category("a", "a", tuple(make(f"MC100{i}", meet) for i in range(1, 4))))
    assert all(o == Passed() for o in outcomes(report).values())


def test_check_requirements_skip_dependents_and_wait_for_them() -> None:
    order: list[str] = []

    def record(code: str, outcome: Outcome) -> CheckFunction:
        def run_it(_: CheckContext) -> Outcome:
            order.append(code)
            return outcome

        return run_it

    category = Category(
        "a",
        "a",
        (
            make("MC1001", record("MC1001", Passed())),
            make("MC1002", record("MC1002", Failed("no"))),
            make("MC1003", record("MC1003", Passed()), requires=("MC1001",)),
            make("MC1004", record("MC1004", Passed()), requires=("MC1002",)),
            make("MC1005", record("MC1005", Passed()), requires=("MC1004",)),
        ),
    )
    found = outcomes(run(category))
    assert found["MC1003"] == Passed()
    assert found["MC1004"] == Skipped("requires MC1002, which did not pass")
    assert found["MC1005"] == Skipped("requires MC1004, which did not pass")
    assert order.index("MC1003") > order.index("MC1001")
    assert "MC1004" not in order


def test_a_warning_satisfies_a_requirement() -> None:
    category = Category(
        "a",
        "a",
        (make("MC1001", failing, severity=Severity.WARNING), make("MC1002", requires=("MC1001",))),
    )
    assert outcomes(run(category))["MC1002"] == Passed()


def test_category_requirements_skip_the_whole_category() -> None:
    first = Category("first", "first", (make("MC1001", failing),))
    second = Category("second", "second", (make("MC2001"),), requires=("first",))
    third = Category("third", "third", (make("MC3001"),), requires=("second",))
    independent = Category("independent", "independent", (make("MC4001"),))
    report = run(first, second, third, independent)
    by_id = {c.category.id: c for c in report.categories}
    assert by_id["second"].skipped == "requires first, which did not pass"
    assert by_id["third"].skipped == "requires second, which did not pass"
    assert outcomes(report)["MC2001"] == Skipped("requires first, which did not pass")
    assert outcomes(report)["MC4001"] == Passed()


def test_requirement_outside_the_run_does_not_block() -> None:
    category = Category("a", "a", (make("MC8001", requires=("MC2002",)),))
    assert outcomes(run(category))["MC8001"] == Passed()


def flaky(failures: int) -> tuple[CheckFunction, list[int]]:
    attempts: list[int] = []

    def run_it(_: CheckContext) -> Outcome:
        attempts.append(1)
        return Failed("not yet") if len(attempts) <= failures else Passed()

    return run_it, attempts


def test_wait_retries_until_the_check_passes() -> None:
    run_it, attempts = flaky(2)
    report = run(Category("a", "a", (make("MC1001", run_it),)), wait_s=5.0)
    result = report.results[0]
    assert result.outcome == Passed() and result.attempts == 3 and len(attempts) == 3


def test_without_wait_nothing_is_retried() -> None:
    run_it, attempts = flaky(2)
    report = run(Category("a", "a", (make("MC1001", run_it),)))
    assert report.results[0].outcome == Failed("not yet") and len(attempts) == 1


def test_wait_gives_up_at_the_deadline() -> None:
    run_it, attempts = flaky(10_000)
    started = time.monotonic()
    report = run(Category("a", "a", (make("MC1001", run_it),)), wait_s=0.3)
    assert report.results[0].outcome == Failed("not yet")
    assert 1 < len(attempts) < 10_000 and time.monotonic() - started < 5


def test_checks_that_cannot_change_are_not_retried() -> None:
    run_it, attempts = flaky(2)
    report = run(Category("a", "a", (make("MC1001", run_it, retry=False),)), wait_s=5.0)
    assert report.results[0].outcome == Failed("not yet") and len(attempts) == 1


def test_a_retry_sees_fresh_facts_and_later_checks_see_them_too() -> None:
    values = iter([False, False, True, True, True])
    fact: Fact[bool] = Fact("ready", lambda _: next(values))

    def ready(c: CheckContext) -> Outcome:
        return Passed() if c.get(fact) else Failed("not ready")

    category = Category("a", "a", (make("MC1001", ready),))
    later = Category("b", "b", (make("MC2001", ready),))
    report = run(category, later, wait_s=5.0)
    assert outcomes(report) == {"MC1001": Passed(), "MC2001": Passed()}
    assert report.categories[1].results[0].attempts == 1  # the adopted fact was already true


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[str] = []

    def category_started(self, category: Category) -> None:
        self.events.append(f"start {category.id}")

    def check_retrying(self, category: Category, check: Check, outcome: Outcome, attempt: int) -> None:
        self.events.append(f"retry {check.code} {attempt}")

    def check_finished(self, category: Category, result: CheckResult) -> None:
        self.events.append(f"done {result.check.code} {type(result.outcome).__name__}")

    def category_finished(self, result: CategoryResult) -> None:
        self.events.append(f"end {result.category.id}")


def test_observer_hears_every_step_in_order() -> None:
    run_it, _ = flaky(1)
    recorder = Recorder()
    first = Category("first", "first", (make("MC1001", run_it),))
    second = Category("second", "second", (make("MC2001", failing, retry=False),), requires=("first",))
    run(first, second, wait_s=5.0, observer=recorder)
    assert recorder.events[:4] == ["start first", "retry MC1001 1", "done MC1001 Passed", "end first"]
    assert recorder.events[4] == "start second"
    assert recorder.events[-1] == "end second"


def test_ticks_are_sent_while_checks_run_when_asked() -> None:
    class Ticker(Observer):
        wants_ticks = True
        ticks = 0

        def tick(self) -> None:
            self.ticks += 1

    def slow(_: CheckContext) -> Outcome:
        time.sleep(0.35)  # the check under test takes a while; the runner itself never sleeps
        return Passed()

    ticker = Ticker()
    run(Category("a", "a", (make("MC1001", slow),)), observer=ticker)
    assert ticker.ticks >= 2


@pytest.mark.parametrize("clock_value", [0.0, 1234.5])
def test_durations_come_from_the_injected_clock(clock_value: float) -> None:
    clock: Callable[[], float] = lambda: clock_value  # noqa: E731
    report = run_checks([Category("a", "a", (make("MC1001"),))], ctx(), clock=clock)
    assert report.duration_s == 0.0 and report.results[0].duration_s == 0.0


def test_the_runner_waits_instead_of_spinning_while_a_dependency_runs() -> None:
    calls = 0

    def clock() -> float:
        nonlocal calls
        calls += 1
        return time.monotonic()

    def slow(_: CheckContext) -> Outcome:
        time.sleep(0.3)  # the check under test is slow; the runner must block meanwhile
        return Passed()

    category = Category("a", "a", (make("MC1001", slow), make("MC1002", requires=("MC1001",))))
    report = run_checks([category], ctx(), clock=clock)
    assert report.success
    assert calls < 100  # a busy loop would call the clock many thousand times in 0.3 s


def test_suppressed_and_fail_on_warning_decide_the_verdict() -> None:
    category = Category(
        "c",
        "c",
        (
            Check("MC2001", "fails", "fix", lambda _: Failed("broken")),
            Check("MC2002", "warns", "look", lambda _: Warned("odd")),
            Check("MC2003", "needs the failing one", "x", lambda _: Passed(), requires=("MC2001",)),
        ),
    )
    plain = run_checks([category], CheckContext(CheckOptions()))
    assert not plain.success and [r.check.code for r in plain.failing] == ["MC2001"]
    suppressed = run_checks([category], CheckContext(CheckOptions()), suppress=frozenset({"MC2001"}))
    assert suppressed.success and [r.suppressed for r in suppressed.results] == [True, False, False]
    assert isinstance(suppressed.results[2].outcome, Skipped)  # a suppressed failure still did not pass
    strict = run_checks(
        [category], CheckContext(CheckOptions()), suppress=frozenset({"MC2001"}), fail_on=Severity.WARNING
    )
    assert not strict.success and [r.check.code for r in strict.failing] == ["MC2002"]
    waited = run_checks(
        [category], CheckContext(CheckOptions()), suppress=frozenset({"MC2001"}), wait_s=0.3, retry_interval_s=0.01
    )
    assert waited.results[0].attempts == 1  # --wait does not wait for a suppressed check
