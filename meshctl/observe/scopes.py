"""Which series a command reads: kubectl-style targets turned into label scopes (see promql.Scope).

Prometheus adds `namespace`, `deployment` and `pod` to every series of a proxy (on Kubernetes from service
discovery, locally from the static scrape config); the proxy itself labels `direction`, `dst_namespace`,
`dst_service` and `rt_route`. An ingress has no inbound side: what it serves is its outbound side.

The platform's list of proxies is optional: with only `--prometheus-url` the target is taken at its word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshctl.errors import UsageError
from meshctl.observe.promql import Matcher, Scope, eq, one_of
from meshctl.platform.base import ProxyInfo, no_match, select
from meshctl.targets import Kind, Target


@dataclass(frozen=True)
class RouteView:
    """The series of one `meshctl routes` call and the services whose profiles name its routes."""

    scopes: tuple[Scope, ...]
    services: tuple[tuple[str, str], ...]  # (namespace, service) whose routes are listed even without traffic
    proxies: tuple[Scope, ...] = ()  # the scrape targets (`up`) of the proxies that record these series
    pods: tuple[str, ...] = ()  # those proxies' pods, as the platform knows them (empty: unknown)


@dataclass(frozen=True)
class WorkloadView:
    """The series of one `meshctl stat` call, grouped by `group`."""

    group: tuple[str, ...]  # ("namespace", "deployment") | ("namespace", "pod") | ("namespace",)
    served: tuple[Scope, ...]  # HTTP traffic the workloads served
    tcp: tuple[Scope, ...]  # connections from their clients
    proxies: tuple[Scope, ...]  # the proxies' own scrape targets (`up`)
    instances: dict[tuple[str, ...], int]  # group key -> instances the platform knows (empty: unknown)


def _workload(target: Target) -> tuple[Matcher, ...]:
    """Matchers of Prometheus' target labels for a deployment, pod or namespace target."""
    if target.kind is Kind.NAMESPACE:
        return (eq("namespace", target.name),) if target.name else ()
    label = "pod" if target.kind is Kind.POD else "deployment"
    name = (eq(label, target.name),) if target.name else ()
    return ((eq("namespace", target.namespace),) if target.namespace else ()) + name


def _ingresses(proxies: Sequence[ProxyInfo]) -> list[ProxyInfo]:
    return [p for p in proxies if p.kind == "ingress"]


def route_view(target: Target, to: Target | None, proxies: Sequence[ProxyInfo] | None) -> RouteView:
    """Inbound routes of the target's services, or (with `to`) the target's outbound routes to a service."""
    chosen = _chosen(target, proxies)
    if to is None:
        if chosen and all(p.kind == "ingress" for p in chosen):
            raise UsageError(
                f"{target} is an ingress: it serves no inbound routes of its own",
                hint=f"see what it sends to a service with `meshctl routes {target} --to svc/NAME`",
            )
        if target.kind is Kind.SERVICE:
            scope: Scope = (eq("direction", "inbound"), eq("dst_namespace", target.namespace))
            if target.name:
                scope = (*scope, eq("dst_service", target.name))
        else:
            scope = (eq("direction", "inbound"), *_workload(target))
        services = {(p.namespace, p.service) for p in chosen or () if p.service}
        if target.kind is Kind.SERVICE and target.name:
            services.add((target.namespace, target.name))
        return RouteView((scope,), tuple(sorted(services)), *_recorders(target, chosen))
    destinations = _destinations(to, proxies)
    if target.kind is Kind.SERVICE:
        # A service does not send requests; the pods that back it do.
        deployments = sorted({p.deployment for p in chosen or ()}) or [target.name or ""]
        source: tuple[Matcher, ...] = (eq("namespace", target.namespace), one_of("deployment", deployments))
    else:
        source = _workload(target)
    scope = (
        eq("direction", "outbound"), *source, eq("dst_namespace", to.namespace), one_of("dst_service", destinations)
    )
    return RouteView((scope,), tuple((to.namespace, name) for name in destinations), *_recorders(target, chosen))


def _recorders(target: Target, chosen: Sequence[ProxyInfo] | None) -> tuple[tuple[Scope, ...], tuple[str, ...]]:
    """The scrape targets of the proxies a routes view reads, and their pods (when the platform knows)."""
    pods = tuple(sorted({p.pod for p in chosen or ()}))
    if target.kind is Kind.SERVICE:
        if not chosen:
            return (), pods
        workload: tuple[Matcher, ...] = (
            eq("namespace", target.namespace), one_of("deployment", sorted({p.deployment for p in chosen}))
        )
    else:
        workload = _workload(target)
    return ((eq("component", "proxy"), *workload),), pods


def _destinations(to: Target, proxies: Sequence[ProxyInfo] | None) -> list[str]:
    """The service names `--to` means: a service, or the services a deployment's or pod's instances back."""
    if to.kind is Kind.NAMESPACE or not to.name:
        raise UsageError(f"--to {to}: name one service", hint="e.g. --to svc/books or --to deploy/books")
    if to.kind is Kind.SERVICE or proxies is None:
        return [to.name]
    backed = sorted({p.service for p in select(proxies, to) if p.service})
    if not backed:
        raise UsageError(f"--to {to}: no service is backed by it", hint="name the service: --to svc/NAME")
    return backed


def _chosen(target: Target, proxies: Sequence[ProxyInfo] | None) -> list[ProxyInfo] | None:
    """The target's proxies, or None when the platform is not known; a target that names none is refused.

    An empty namespace means every namespace (`stat -A`).
    """
    if proxies is None:
        return None
    if target.namespace == "" and target.kind is not Kind.NAMESPACE:
        everywhere = {p.namespace for p in proxies}
        chosen = [p for ns in sorted(everywhere) for p in select(proxies, replace(target, namespace=ns))]
    else:
        chosen = select(proxies, target)
    if not chosen:
        raise no_match(target, proxies)
    return chosen


def workload_view(target: Target, proxies: Sequence[ProxyInfo] | None) -> WorkloadView:
    """Per-workload series for `meshctl stat` of deployments, pods or namespaces."""
    if target.kind is Kind.SERVICE:
        raise UsageError(
            f"stat reports workloads, not services ({target})",
            hint=f"use `meshctl stat deploy/{target.name or ''}` or `meshctl routes {target}`",
        )
    chosen = _chosen(target, proxies)
    group: tuple[str, ...] = {
        Kind.DEPLOYMENT: ("namespace", "deployment"),
        Kind.POD: ("namespace", "pod"),
        Kind.NAMESPACE: ("namespace",),
    }[target.kind]
    workload = _workload(target)
    served: list[Scope] = [(eq("direction", "inbound"), *workload)]
    tcp: list[Scope] = [(eq("direction", "inbound"), eq("peer", "src"), *workload)]
    ingresses = _ingresses(chosen or [])
    if ingresses and target.kind is not Kind.NAMESPACE:
        # Summed per namespace, the ingress' requests would be counted twice (again at the services).
        label = "pod" if target.kind is Kind.POD else "deployment"
        names = sorted({p.pod if label == "pod" else p.deployment for p in ingresses})
        via = (eq("direction", "outbound"), *_workload(replace(target, name=None)), one_of(label, names))
        served.append(via)
        tcp.append((*via, eq("peer", "src")))
    # `component="proxy"` marks the proxies' scrape targets (the control plane is scraped too).
    proxy_scope: Scope = (eq("component", "proxy"), *workload)
    return WorkloadView(group, tuple(served), tuple(tcp), (proxy_scope,), _instances(group, chosen))


def _instances(group: Sequence[str], chosen: Sequence[ProxyInfo] | None) -> dict[tuple[str, ...], int]:
    counts: dict[tuple[str, ...], int] = {}
    for proxy in chosen or ():
        labels = {"namespace": proxy.namespace, "deployment": proxy.deployment, "pod": proxy.pod}
        key = tuple(labels[name] for name in group)
        counts[key] = counts.get(key, 0) + 1
    return counts
