"""`meshctl routes`: three PromQL queries (counts, latency buckets, scrape coverage) make a RoutesReport.

`assemble_routes` is pure so its arithmetic is tested without a Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshctl.observe import promql
from meshctl.observe.models import DEFAULT_ROUTE, Counts, Coverage, Latency, RouteRow, RoutesReport
from meshctl.observe.prometheus import PrometheusClient, Sample
from meshctl.observe.quantiles import QUANTILES, Bucket, parse_le, quantile
from meshctl.observe.scopes import RouteView

RouteKey = tuple[str, str, str]  # dst_namespace, dst_service, rt_route


def collect_routes(
    client: PrometheusClient,
    view: RouteView,
    window_s: int,
    *,
    target: str,
    namespace: str,
    to: str | None,
    profiles: Mapping[tuple[str, str], Sequence[str]] | None,
    scrape_interval_s: float | None = None,
) -> RoutesReport:
    counts = client.query(promql.route_counts(view.scopes, window_s))
    buckets = client.query(promql.route_buckets(view.scopes, window_s))
    rows = assemble_routes(counts, buckets, view.services, profiles)
    unprofiled: tuple[str, ...] = ()
    if profiles is not None:
        unprofiled = tuple(f"{svc}.{ns}" for ns, svc in view.services if (ns, svc) not in profiles)
    coverage = None
    if view.proxies and scrape_interval_s:
        samples = client.query(promql.scrape_coverage(view.proxies, window_s))
        coverage = assemble_coverage(samples, view.pods, scrape_interval_s, window_s)
    return RoutesReport(target, namespace, to, window_s, rows, unprofiled, coverage)


def assemble_coverage(
    samples: Iterable[Sample], pods: Sequence[str], scrape_interval_s: float, window_s: int
) -> Coverage:
    """The span of data in the window (the best-covered proxy's scrapes × the interval) and the pods
    Prometheus does not scrape (no target) or cannot (its last scrape failed)."""
    scrapes: dict[str, float] = {}
    failing: set[str] = set()
    for sample in samples:
        pod = sample.labels.get("pod", "")
        if sample.labels.get(promql.SIGNAL_LABEL) == promql.COVERAGE_SAMPLES:
            scrapes[pod] = max(scrapes.get(pod, 0.0), sample.value)
        elif sample.value < 1:
            failing.add(pod)
    covered = None
    if scrapes:
        # n scrapes cover about n intervals; one interval short of the window is a full window (alignment).
        covered = max(scrapes.values()) * scrape_interval_s
        covered = float(window_s) if covered >= window_s - scrape_interval_s else covered
    unscraped = tuple(pod for pod in pods if pod not in scrapes)
    return Coverage(covered, unscraped, tuple(sorted(failing)))


def assemble_routes(
    counts: Iterable[Sample],
    buckets: Iterable[Sample],
    services: Sequence[tuple[str, str]],
    profiles: Mapping[tuple[str, str], Sequence[str]] | None,
) -> tuple[RouteRow, ...]:
    """One row per route seen or named by a profile of the view's services, in display order.

    `profiles` maps (namespace, service) to its route names; None when profiles cannot be read (then
    every route seen counts as profiled).
    """
    effective: dict[RouteKey, dict[str, float]] = {}
    actual: dict[RouteKey, dict[str, float]] = {}
    for sample in counts:
        key = _key(sample.labels)
        table = actual if sample.labels.get(promql.KIND_LABEL) == "actual" else effective
        by_class = table.setdefault(key, {})
        cls = sample.labels.get("classification", "success")
        by_class[cls] = by_class.get(cls, 0.0) + sample.value
    histograms: dict[RouteKey, list[Bucket]] = {}
    for sample in buckets:
        histograms.setdefault(_key(sample.labels), []).append((parse_le(sample.labels.get("le", "+Inf")), sample.value))
    keys = set(effective) | set(actual) | set(histograms)
    for namespace, service in services:
        keys.add((namespace, service, DEFAULT_ROUTE))
        keys.update((namespace, service, name) for name in (profiles or {}).get((namespace, service), ()))
    rows = []
    for key in sorted(keys, key=_order):
        namespace, service, route = key
        named = profiles is None or route == DEFAULT_ROUTE or route in profiles.get((namespace, service), ())
        rows.append(
            RouteRow(
                namespace=namespace,
                service=service,
                route=route,
                effective=_counts(effective.get(key)),
                actual=_counts(actual[key]) if key in actual else None,
                latency=_latency(histograms.get(key, [])),
                in_profile=named,
            )
        )
    return tuple(rows)


def _key(labels: Mapping[str, str]) -> RouteKey:
    return (labels.get("dst_namespace", ""), labels.get("dst_service", ""), labels.get("rt_route", DEFAULT_ROUTE))


def _order(key: RouteKey) -> tuple[str, str, bool, str]:
    """By service, then route name, with [DEFAULT] last (it is what no route matched)."""
    namespace, service, route = key
    return (namespace, service, route == DEFAULT_ROUTE, route)


def _counts(by_class: Mapping[str, float] | None) -> Counts:
    if not by_class:
        return Counts()
    return Counts(success=by_class.get("success", 0.0), failure=by_class.get("failure", 0.0))


def _latency(buckets: Sequence[Bucket]) -> Latency:
    """Quantiles in milliseconds (the `le` bounds are seconds)."""
    values = [quantile(q, buckets) for q in QUANTILES]
    p50, p95, p99 = (None if v is None else v * 1000.0 for v in values)
    return Latency(p50, p95, p99)
