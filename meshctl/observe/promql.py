"""PromQL builders: pure functions from label scopes and a window to query text.

Counts over a window are taken as `counter now - counter one window ago`, not with `increase()`:
`increase()` extrapolates to the window's edges and ignores the first sample of a series, so a route
that got its first 10 requests a minute ago reads as 0 or 13.4 requests. The difference of two samples
is exact. A series born inside the window has no sample a window ago: its whole value is the change
(it started at 0). A counter that went down (the proxy restarted) counts from its restart.

A scope is one label selector; a view may be the union of several (`or`), e.g. the inbound side of
every sidecar plus the outbound side of an ingress, which has no inbound side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshctl.observe.window import format_duration

# Route views are keyed by the destination and the route; `kind` tells effective from actual counts.
ROUTE_KEY: tuple[str, ...] = ("dst_namespace", "dst_service", "rt_route")
KIND_LABEL = "kind"  # "effective" (what the client saw, after retries) | "actual" (each attempt)
SIGNAL_LABEL = "signal"  # "in_flight" | "tcp" | "meshed" in the saturation query

_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # "=", "!=", "=~" or "!~"
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{json.dumps(self.value)}"


Scope = tuple[Matcher, ...]


def eq(label: str, value: str) -> Matcher:
    return Matcher(label, "=", value)


def one_of(label: str, values: Iterable[str]) -> Matcher:
    """label equal to any of the values (a regex alternation of the escaped values)."""
    unique = sorted(set(values))
    if len(unique) == 1:
        return eq(label, unique[0])
    return Matcher(label, "=~", "|".join(regex_escape(v) for v in unique))


def regex_escape(value: str) -> str:
    return "".join(f"\\{c}" if c in _RE2_SPECIAL else c for c in value)


def selector(metric: str, scope: Scope) -> str:
    return f"{metric}{{{','.join(str(m) for m in scope)}}}"


def _window_change(metric: str, scopes: Sequence[Scope], window_s: int) -> str:
    """Every series' exact change over the window (see the module docstring), as one vector."""
    offset = format_duration(window_s)
    parts = []
    for scope in scopes:
        now = selector(metric, scope)
        parts.append(f"(({now} - {now} offset {offset}) >= 0 or {now})")
    return " or ".join(parts)


def _union(metric: str, scopes: Sequence[Scope]) -> str:
    return " or ".join(selector(metric, scope) for scope in scopes)


def _by(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def _tag(expr: str, label: str, value: str) -> str:
    """The vector with one more constant label (so two vectors can travel in one answer)."""
    return f'label_replace({expr}, "{label}", "{value}", "", "")'


# --- routes -----------------------------------------------------------------------------------------


def route_counts(scopes: Sequence[Scope], window_s: int) -> str:
    """Responses by route and classification over the window, effective and actual, in one query."""
    group = _by((*ROUTE_KEY, "classification"))
    effective = f"sum by ({group}) ({_window_change('route_response_total', scopes, window_s)})"
    actual = f"sum by ({group}) ({_window_change('route_actual_response_total', scopes, window_s)})"
    return f"{_tag(effective, KIND_LABEL, 'effective')} or {_tag(actual, KIND_LABEL, 'actual')}"


def route_buckets(scopes: Sequence[Scope], window_s: int) -> str:
    """Latency bucket counts by route over the window; quantiles are computed from them client-side."""
    change = _window_change("route_response_latency_seconds_bucket", scopes, window_s)
    return f"sum by ({_by((*ROUTE_KEY, 'le'))}) ({change})"


COVERAGE_SAMPLES, COVERAGE_UP = "samples", "up"


def scrape_coverage(proxies: Sequence[Scope], window_s: int) -> str:
    """Per scrape target of the proxies: how many scrapes the window holds, and whether the last one worked.

    The number of scrapes times the scrape interval is the span of data the window really covers: right
    after `meshctl up` that is seconds, not the minute asked for.
    """
    samples = " or ".join(f"count_over_time({selector('up', s)}[{format_duration(window_s)}])" for s in proxies)
    now = _union("up", proxies)
    return f"{_tag(samples, SIGNAL_LABEL, COVERAGE_SAMPLES)} or {_tag(now, SIGNAL_LABEL, COVERAGE_UP)}"


# --- workloads --------------------------------------------------------------------------------------


def workload_counts(group: Sequence[str], scopes: Sequence[Scope], window_s: int) -> str:
    change = _window_change("response_total", scopes, window_s)
    return f"sum by ({_by((*group, 'classification'))}) ({change})"


def workload_buckets(group: Sequence[str], scopes: Sequence[Scope], window_s: int) -> str:
    change = _window_change("response_latency_seconds_bucket", scopes, window_s)
    return f"sum by ({_by((*group, 'le'))}) ({change})"


def workload_saturation(
    group: Sequence[str], served: Sequence[Scope], tcp: Sequence[Scope], proxies: Sequence[Scope]
) -> str:
    """Now, in one answer: requests in flight (received minus answered), open TCP connections from
    clients, and the proxies Prometheus scrapes successfully (the meshed instances)."""
    by = _by(group)
    requests = f"sum by ({by}) ({_union('request_total', served)})"
    # A workload whose only requests are still in flight has no response series yet: count 0 answered.
    responses = f"(sum by ({by}) ({_union('response_total', served)}) or {requests} * 0)"
    connections = f"sum by ({by}) ({_union('tcp_open_connections', tcp)})"
    meshed = f"sum by ({by}) ({_union('up', proxies)})"
    return " or ".join(
        (
            _tag(f"{requests} - {responses}", SIGNAL_LABEL, "in_flight"),
            _tag(connections, SIGNAL_LABEL, "tcp"),
            _tag(meshed, SIGNAL_LABEL, "meshed"),
        )
    )
