"""The registry's declarations refuse mistakes early, and facts are shared, loaded once and refreshable."""

from __future__ import annotations

import threading

import pytest

from meshctl.errors import UnreachableError
from meshctl.health.registry import (
    Category,
    Check,
    CheckContext,
    CheckOptions,
    Fact,
    Mode,
    Outcome,
    Passed,
    select,
    validate,
)


def ok(_: CheckContext) -> Outcome:
    return Passed()


def check(code: str, *requires: str) -> Check:
    return Check(code, f"check {code}", "do something", ok, requires=requires)


def test_codes_are_validated() -> None:
    with pytest.raises(ValueError, match="MC"):
        check("MC12")
    with pytest.raises(ValueError, match="MC"):
        check("XX1001")
    with pytest.raises(ValueError, match="timeout"):
        Check("MC1001", "d", "h", ok, timeout=0)


def test_kubernetes_only_range() -> None:
    assert check("MC2150").kubernetes_only
    assert not check("MC2001").kubernetes_only


def test_category_refuses_duplicates_and_forward_requirements() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Category("a", "a", (check("MC1001"), check("MC1001")))
    with pytest.raises(ValueError, match="after it"):
        Category("a", "a", (check("MC1001", "MC1002"), check("MC1002")))


def test_validate_catalogue_order() -> None:
    first = Category("first", "first", (check("MC1001"),))
    second = Category("second", "second", (check("MC2001", "MC1001"),), requires=("first",))
    validate([first, second])
    with pytest.raises(ValueError, match="do not come before"):
        validate([second, first])
    with pytest.raises(ValueError, match="duplicate check code"):
        validate([first, Category("other", "other", (check("MC1001"),))])
    with pytest.raises(ValueError, match="duplicate category"):
        validate([first, Category("first", "again", (check("MC1002"),))])


def test_select_by_mode_drops_requirements_not_selected() -> None:
    pre = Category("pre", "pre", (check("MC1020"),), modes=frozenset({Mode.PRE}))
    both = Category("version", "version", (check("MC1010"),), modes=frozenset({Mode.PRE, Mode.INSTALLED}))
    installed = Category("installed", "installed", (check("MC2001"),), requires=("pre", "version"))
    proxy = Category("proxy", "proxy", (check("MC8001"),), modes=frozenset({Mode.PROXY}))
    catalogue = [pre, both, installed, proxy]
    assert [c.id for c in select(catalogue, frozenset({Mode.PRE}))] == ["pre", "version"]
    chosen = select(catalogue, frozenset({Mode.INSTALLED, Mode.PROXY}))
    assert [c.id for c in chosen] == ["version", "installed", "proxy"]
    assert chosen[1].requires == ("version",)


def test_fact_is_loaded_once_even_when_asked_concurrently() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def load(_: CheckContext) -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    fact: Fact[int] = Fact("answer", load)
    ctx = CheckContext(CheckOptions())
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(ctx.get(fact))) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == [42] * 8 and len(calls) == 1


def test_a_failed_load_raises_the_same_error_to_every_asker() -> None:
    calls: list[int] = []

    def load(_: CheckContext) -> int:
        calls.append(1)
        raise UnreachableError("no mesh here", hint="meshctl up")

    fact: Fact[int] = Fact("broken", load)
    ctx = CheckContext(CheckOptions())
    for _ in range(3):
        with pytest.raises(UnreachableError, match="no mesh here"):
            ctx.get(fact)
    assert len(calls) == 1


def test_fresh_context_reloads_and_adopt_takes_newer_facts() -> None:
    counter = iter(range(100))
    fact: Fact[int] = Fact("counter", lambda _: next(counter))
    ctx = CheckContext(CheckOptions())
    assert ctx.get(fact) == 0 and ctx.get(fact) == 0
    retry = ctx.fresh()
    assert retry.get(fact) == 1
    assert ctx.get(fact) == 0
    ctx.adopt(retry)
    assert ctx.get(fact) == 1


def test_platform_comes_from_the_factory_once() -> None:
    opened: list[int] = []

    def factory() -> object:
        opened.append(1)
        return object()

    ctx = CheckContext(CheckOptions(), platform=factory)  # type: ignore[arg-type]
    assert ctx.platform is ctx.platform
    assert len(opened) == 1
    with pytest.raises(RuntimeError, match="no platform"):
        CheckContext(CheckOptions()).platform  # noqa: B018
