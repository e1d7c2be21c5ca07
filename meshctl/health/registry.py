"""The vocabulary of `meshctl check`: checks and categories declared as data, outcomes as values.

API note (stable; both platforms register against it)
-----------------------------------------------------
- A `Check` is a stable `code` ("MC4007"), a one-line `description` (what is true when it passes), a `hint`
  (the fix: a command to run, or what to change), a `severity`, a `timeout` per attempt, whether `--wait`
  retries it, the codes it `requires` (earlier checks that must pass or warn first) and `run`.
- `run(ctx) -> Outcome` is a plain function (it may block: each attempt runs in its own thread and is
  abandoned at its timeout) or an `async def` (run with asyncio.run in that thread).
- Outcomes are values: `Passed(detail)`, `Warned(reason, hint)`, `Failed(reason, hint)`, `Skipped(reason)`.
  A `Failed` of a `Severity.WARNING` check is reported as `Warned`. A `MeshError` raised by `run` (or by a
  fact it reads) becomes `Failed(message, hint)`; any other exception `Failed("check crashed: ...")`.
- A `Category` groups checks under a header (`id`, kebab-case), runs them concurrently (respecting their
  `requires`), and `requires` earlier categories: when one of those has a failed check, the whole category
  is skipped. `modes` says in which runs it takes part: `Mode.PRE` (`--pre`), `Mode.INSTALLED` (the
  default run), `Mode.PROXY` (added by `--proxy`).
- Checks share facts through `CheckContext.get(fact)`: a `Fact` is a named, typed loader memoised per
  context (loaded once even when checks ask concurrently; a retry under `--wait` loads it afresh).
- Each platform lists its categories in order in a module named in `CATALOGUES` with
  `def categories() -> list[Category]` (imported lazily, only when that platform is checked). A platform's
  own checks, facts and fixes live in its package (meshctl/platform/<name>/); meshctl/health holds the
  engine (registry, runner, render, session, explain, fix) and the checks every platform shares.
- Codes: MC1xxx platform reachable / version / pre-install, MC2xxx mesh installed and running, MC3xxx
  configuration, MC4xxx identity, MC5xxx control-plane API, MC6xxx Prometheus, MC7xxx versions, MC8xxx data
  plane (`--proxy`). In every group, MCx000-MCx099 are local or shared checks and MCx100-MCx199 are
  reserved for Kubernetes-only checks. A code keeps its meaning forever; a check shared by both platforms
  keeps one code and one description. Every code has its document in checks/<CODE>.md. Category ids of
  Kubernetes-only categories start with "kubernetes-".
- Shared building blocks (Platform-only, usable on Kubernetes): `checks_identity.identity_category(source)`
  (MC4001-MC4009 from an `IdentitySource` of facts), `checks_prometheus.prometheus_category()` (MC6xxx) and
  `checks_prometheus.METRICS_PRESENT` (MC8004), `facts.STATUS` / `facts.PROXIES` (Platform.status/proxies).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from meshctl.platform.base import Platform

T = TypeVar("T")

CODE_PATTERN = re.compile(r"^MC[1-8][0-9]{3}$")
KUBERNETES_ONLY = range(100, 200)  # the last three digits of a code reserved for Kubernetes-only checks


class Severity(StrEnum):
    ERROR = "error"  # a failure fails the run (exit 1)
    WARNING = "warning"  # a failure is reported as a warning (exit 0)


class Mode(StrEnum):
    PRE = "pre"  # `meshctl check --pre`: can the mesh be installed here
    INSTALLED = "installed"  # `meshctl check`: the installed mesh
    PROXY = "proxy"  # added by `meshctl check --proxy`: the data plane


# --- outcomes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passed:
    detail: str = ""  # optional note (shown in JSON), e.g. "7 proxies"


@dataclass(frozen=True, slots=True)
class Warned:
    reason: str
    hint: str | None = None  # overrides the check's hint when set


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str
    hint: str | None = None  # overrides the check's hint when set


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


Outcome = Passed | Warned | Failed | Skipped

CheckFunction = Callable[["CheckContext"], "Outcome | Awaitable[Outcome]"]


def outcome_name(outcome: Outcome) -> str:
    """The JSON spelling: "passed", "warned", "failed" or "skipped"."""
    return type(outcome).__name__.lower()


# --- declarations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    code: str
    description: str
    hint: str
    run: CheckFunction
    severity: Severity = Severity.ERROR
    timeout: float = 5.0  # seconds per attempt
    retry: bool = True  # retried under --wait until it passes (False: waiting cannot change the answer)
    requires: tuple[str, ...] = ()  # codes of earlier checks (this or an earlier category)

    def __post_init__(self) -> None:
        if not CODE_PATTERN.match(self.code):
            raise ValueError(f"check code {self.code!r} does not match MC[1-8]NNN")
        if self.timeout <= 0:
            raise ValueError(f"{self.code}: timeout must be positive")

    @property
    def kubernetes_only(self) -> bool:
        return int(self.code[3:]) in KUBERNETES_ONLY


@dataclass(frozen=True)
class Category:
    id: str  # the header printed above its checks, e.g. "mesh-identity"
    name: str  # a short phrase for JSON and messages, e.g. "trust anchor and issuer"
    checks: tuple[Check, ...]
    requires: tuple[str, ...] = ()  # ids of earlier categories
    modes: frozenset[Mode] = frozenset({Mode.INSTALLED})

    def __post_init__(self) -> None:
        codes = [c.code for c in self.checks]
        if len(set(codes)) != len(codes):
            raise ValueError(f"category {self.id}: duplicate check codes")
        for check in self.checks:
            later = codes[codes.index(check.code) :]
            if any(code in later for code in check.requires):
                raise ValueError(f"{check.code} requires a check that comes after it in {self.id}")


def validate(categories: list[Category]) -> None:
    """Every code unique, every requirement earlier: a catalogue that breaks this is a programming error."""
    seen_codes: set[str] = set()
    seen_categories: set[str] = set()
    for category in categories:
        if category.id in seen_categories:
            raise ValueError(f"duplicate category {category.id}")
        missing = [r for r in category.requires if r not in seen_categories]
        if missing:
            raise ValueError(f"category {category.id} requires {missing}, which do not come before it")
        for check in category.checks:
            if check.code in seen_codes:
                raise ValueError(f"duplicate check code {check.code}")
            unknown = [r for r in check.requires if r not in seen_codes]
            if unknown:
                raise ValueError(f"{check.code} requires {unknown}, which do not come before it")
            seen_codes.add(check.code)
        seen_categories.add(category.id)


def select(categories: list[Category], modes: frozenset[Mode]) -> list[Category]:
    """The categories of a run, in catalogue order; requirements on categories not selected are dropped."""
    chosen = [c for c in categories if c.modes & modes]
    ids = {c.id for c in chosen}
    return [
        Category(c.id, c.name, c.checks, tuple(r for r in c.requires if r in ids), c.modes)
        if any(r not in ids for r in c.requires)
        else c
        for c in chosen
    ]


# Each platform's catalogue, imported only when that platform is checked: "module:function".
CATALOGUES: dict[str, str] = {
    "local": "meshctl.platform.local.checks:categories",
    "kubernetes": "meshctl.platform.kubernetes.checks:categories",
}


def catalogue(platform: str) -> list[Category]:
    """The ordered categories of a platform (see CATALOGUES), validated."""
    module_name, _, function = CATALOGUES[platform].partition(":")
    factory: Callable[[], list[Category]] = getattr(importlib.import_module(module_name), function)
    categories = factory()
    validate(categories)
    return categories


# --- shared facts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """Something several checks need (the mesh record, the trust anchors ...), loaded once per context."""

    name: str
    load: Callable[[CheckContext], T]

    def __repr__(self) -> str:
        return f"Fact({self.name})"


@dataclass(frozen=True)
class CheckOptions:
    """What the run was asked: the flags of `meshctl check` that checks may read."""

    platform: str = "local"
    home: Path | None = None  # the local state directory
    kube_context: str | None = None
    namespace: str | None = None  # `--proxy -n NS`: only that namespace's proxies (None: all)
    subnet: str | None = None  # `--pre` on the local platform: the subnet `meshctl up` would use
    modes: frozenset[Mode] = frozenset({Mode.INSTALLED})
    cli_version: str = ""


class _Slot:
    __slots__ = ("error", "lock", "loaded", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.value: Any = None
        self.error: BaseException | None = None


class CheckContext:
    """What every check receives: the options, the platform, the clock and the shared facts."""

    def __init__(
        self,
        options: CheckOptions,
        *,
        platform: Callable[[], Platform] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.options = options
        self._platform_factory = platform
        self._now = now or (lambda: datetime.now(UTC))
        self._slots: dict[Fact[Any], _Slot] = {}
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now()

    @property
    def platform(self) -> Platform:
        return self.get(_PLATFORM)

    def get(self, fact: Fact[T]) -> T:
        """The fact's value, loaded on first use; a failed load raises the same error to every asker."""
        with self._lock:
            slot = self._slots.setdefault(fact, _Slot())
        with slot.lock:
            if not slot.loaded:
                try:
                    slot.value = fact.load(self)
                except Exception as exc:  # remembered, so every check that asks sees the same failure
                    slot.error = exc
                slot.loaded = True
        if slot.error is not None:
            raise slot.error
        value: T = slot.value
        return value

    def fresh(self) -> CheckContext:
        """A context with the same options and no loaded facts: what a retry under --wait uses."""
        return CheckContext(self.options, platform=self._platform_factory, now=self._now)

    def adopt(self, other: CheckContext) -> None:
        """Take over the facts `other` loaded successfully (a retry that passed saw the newer world)."""
        with other._lock:
            loaded = {f: s for f, s in other._slots.items() if s.loaded and s.error is None}
        with self._lock:
            self._slots.update(loaded)

    def open_platform(self) -> Platform:
        if self._platform_factory is None:
            raise RuntimeError("this check context has no platform")
        return self._platform_factory()


_PLATFORM: Fact[Platform] = Fact("platform", lambda ctx: ctx.open_platform())

__all__ = [
    "CATALOGUES",
    "Category",
    "Check",
    "CheckContext",
    "CheckFunction",
    "CheckOptions",
    "Failed",
    "Fact",
    "Mode",
    "Outcome",
    "Passed",
    "Severity",
    "Skipped",
    "Warned",
    "catalogue",
    "outcome_name",
    "select",
    "validate",
]
