"""MC6xxx: the mesh's Prometheus runs and scrapes every proxy, on any platform.

Only the Platform abstraction is used (status, proxies, prometheus_url): one request to the targets API
answers for every proxy, however many pods there are. MC8004 (`--proxy`) asks Prometheus for the
proxies' series with one query.

Right after a mesh starts, Prometheus may not have loaded a proxy as a target or scraped it yet: MC6003 and
MC8004 then ask again, for up to FIRST_SCRAPE_WAIT_S (two scrape intervals of the local platform), and
say they are waiting for the first scrape, as `linkerd check` waits for pods, instead of failing at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meshctl.errors import UnreachableError
from meshctl.health.facts import PROXIES, STATUS, listing, plural, selected
from meshctl.health.probe import url_get
from meshctl.health.registry import Category, Check, CheckContext, Fact, Failed, Outcome, Passed, Severity

PROMETHEUS_TIMEOUT_S = 2.0
FIRST_SCRAPE_WAIT_S = 10.0  # how long MC6003 and MC8004 wait for Prometheus' first scrape of a proxy
FIRST_SCRAPE_POLL_S = 0.5
START_HINT = "start it again: `meshctl check --fix --yes` (or `meshctl down && meshctl up`)"


def _url(ctx: CheckContext) -> str:
    return ctx.platform.prometheus_url()


def _api(ctx: CheckContext, path: str, query: dict[str, str] | None = None) -> Any:
    base = ctx.get(PROMETHEUS_URL)
    answer = url_get(base, path, PROMETHEUS_TIMEOUT_S, query)
    if answer.status != 200:
        raise UnreachableError(f"{base}{path} answered {answer.status}: {answer.text[:200]}")
    body = answer.json()
    if body.get("status") != "success":
        raise UnreachableError(f"{base}{path}: {body.get('error') or body}")
    return body["data"]


def _targets(ctx: CheckContext) -> list[dict[str, Any]]:
    data = _api(ctx, "/api/v1/targets", {"state": "active"})
    targets: list[dict[str, Any]] = data.get("activeTargets") or []
    return targets


def _series_pods(ctx: CheckContext) -> set[tuple[str, str]]:
    data = _api(ctx, "/api/v1/query", {"query": "count by (namespace, pod) (proxy_build_info)"})
    return {(r["metric"].get("namespace", ""), r["metric"].get("pod", "")) for r in data.get("result") or []}


PROMETHEUS_URL: Fact[str] = Fact("prometheus url", _url)
TARGETS: Fact[list[dict[str, Any]]] = Fact("prometheus targets", _targets)
SERIES_PODS: Fact[set[tuple[str, str]]] = Fact("pods with proxy series", _series_pods)


def running(ctx: CheckContext) -> Outcome:
    components = [c for c in ctx.get(STATUS).components if c.kind == "prometheus"]
    if not components:
        return Failed("the mesh has no Prometheus component")
    down = [f"{c.pod}: {c.detail or c.state}" for c in components if not all(p.alive for p in c.processes)]
    if down:
        return Failed("\n".join(down), START_HINT)
    return Passed(components[0].pod)


def ready(ctx: CheckContext) -> Outcome:
    base = ctx.get(PROMETHEUS_URL)
    answer = url_get(base, "/-/ready", PROMETHEUS_TIMEOUT_S)
    if answer.status != 200:
        return Failed(f"{base}/-/ready answered {answer.status}: {answer.text.strip()[:200]}")
    return Passed(base)


def _target_state(targets: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["labels"].get("namespace", ""), t["labels"].get("pod", "")): t for t in targets if "labels" in t}


def _until_scraped(
    ctx: CheckContext, first: Any, again: Callable[[], Any], pending: Callable[[Any], list[str]]
) -> tuple[Any, list[str]]:
    """Ask `again` while `pending` names proxies not scraped yet, up to FIRST_SCRAPE_WAIT_S; the last answer
    and what is still pending."""
    deadline = time.monotonic() + FIRST_SCRAPE_WAIT_S
    answer = first
    while pending(answer) and time.monotonic() + FIRST_SCRAPE_POLL_S < deadline:
        time.sleep(FIRST_SCRAPE_POLL_S)
        answer = again()
    return answer, pending(answer)


def _scrape_problems(ctx: CheckContext, targets: list[dict[str, Any]], first_only: bool) -> list[str]:
    """What is wrong with each proxy's target; with `first_only`, only the proxies not scraped yet."""
    by_pod = _target_state(targets)
    problems: list[str] = []
    for proxy in ctx.get(PROXIES):
        target = by_pod.get((proxy.namespace, proxy.pod))
        if target is None:
            problems.append(f"{proxy.namespace}/{proxy.pod}: not a scrape target")
        elif target.get("health") == "unknown":
            problems.append(f"{proxy.namespace}/{proxy.pod}: not scraped yet")
        elif target.get("health") != "up" and not first_only:
            problems.append(f"{proxy.namespace}/{proxy.pod}: {target.get('lastError') or 'down'}")
    return problems


def scrapes_proxies(ctx: CheckContext) -> Outcome:
    targets, waiting = _until_scraped(
        ctx, ctx.get(TARGETS), lambda: _targets(ctx), lambda answer: _scrape_problems(ctx, answer, True)
    )
    problems = _scrape_problems(ctx, targets, False)
    if problems:
        reason = f"{plural(len(problems), 'proxy', 'proxies')} not scraped:\n" + "\n".join(problems[:10])
        if waiting:
            reason = f"still waiting for the first scrape after {FIRST_SCRAPE_WAIT_S:g}s: {reason}"
        return Failed(reason, "a proxy that is down is reported by MC2003; otherwise see the Prometheus log")
    return Passed(plural(len(ctx.get(PROXIES)), "proxy", "proxies"))


def scrapes_control(ctx: CheckContext) -> Outcome:
    targets = [t for t in ctx.get(TARGETS) if t.get("labels", {}).get("component") == "control-plane"]
    if not targets:
        return Failed("the control plane is not a scrape target", "see the Prometheus configuration")
    down = [t.get("lastError") or t.get("health", "down") for t in targets if t.get("health") != "up"]
    if down:
        return Failed(f"the control plane is not scraped: {down[0]}")
    return Passed()


def metrics_present(ctx: CheckContext) -> Outcome:
    """--proxy: the selected proxies have series in Prometheus (what `meshctl stat/routes` will query)."""
    proxies = selected(ctx, ctx.get(PROXIES))

    def missing_from(present: set[tuple[str, str]]) -> list[str]:
        return [f"{p.namespace}/{p.pod}" for p in proxies if (p.namespace, p.pod) not in present]

    _, missing = _until_scraped(ctx, ctx.get(SERIES_PODS), lambda: _series_pods(ctx), missing_from)
    if missing:
        return Failed(
            f"no proxy metrics in Prometheus for {plural(len(missing), 'pod')} after waiting "
            f"{FIRST_SCRAPE_WAIT_S:g}s for the first scrape: {listing(missing)}",
            "wait a scrape interval (`meshctl check --proxy --wait 30s`); if it stays, check MC6003",
        )
    return Passed()


METRICS_PRESENT = Check(
    "MC8004",
    "data plane proxy metrics are present in Prometheus",
    "wait a scrape interval (`meshctl check --proxy --wait 30s`); if it stays, see MC6003",
    metrics_present,
    severity=Severity.WARNING,
    timeout=FIRST_SCRAPE_WAIT_S + 2 * PROMETHEUS_TIMEOUT_S,
    requires=("MC8001", "MC6002"),
)


def prometheus_category(*, requires: tuple[str, ...] = ()) -> Category:
    return Category(
        id="prometheus",
        name="Prometheus runs and scrapes the mesh",
        checks=(
            Check("MC6001", "Prometheus is running", START_HINT, running, timeout=3.0),
            Check(
                "MC6002",
                "Prometheus is ready",
                "see the Prometheus log ($MESHCTL_HOME/logs/prometheus.log on the local platform)",
                ready,
                timeout=3.0,
                requires=("MC6001",),
            ),
            Check(
                "MC6003",
                "Prometheus scrapes every proxy",
                "wait a scrape interval (`meshctl check --wait 30s`); a proxy that is down is reported by MC2003",
                scrapes_proxies,
                timeout=FIRST_SCRAPE_WAIT_S + 2 * PROMETHEUS_TIMEOUT_S,
                requires=("MC6002",),
            ),
            Check(
                "MC6004",
                "Prometheus scrapes the control plane",
                "see the Prometheus configuration and log",
                scrapes_control,
                severity=Severity.WARNING,
                timeout=3.0,
                requires=("MC6002",),
            ),
        ),
        requires=requires,
    )
