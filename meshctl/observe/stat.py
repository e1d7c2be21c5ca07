"""`meshctl stat`: three PromQL queries (counts, latency buckets, saturation) per call, into a StatReport.

`assemble_stat` is pure so its arithmetic is tested without a Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshctl.observe import promql
from meshctl.observe.models import Counts, Latency, StatReport, WorkloadRow
from meshctl.observe.prometheus import PrometheusClient, Sample
from meshctl.observe.quantiles import QUANTILES, Bucket, parse_le, quantile
from meshctl.observe.scopes import WorkloadView

GroupKey = tuple[str, ...]


def collect_stat(
    client: PrometheusClient, view: WorkloadView, window_s: int, *, kind: str, namespace: str | None
) -> StatReport:
    counts = client.query(promql.workload_counts(view.group, view.served, window_s))
    buckets = client.query(promql.workload_buckets(view.group, view.served, window_s))
    saturation = client.query(promql.workload_saturation(view.group, view.served, view.tcp, view.proxies))
    rows = assemble_stat(view.group, counts, buckets, saturation, view.instances)
    return StatReport(kind, namespace, window_s, rows)


def assemble_stat(
    group: Sequence[str],
    counts: Iterable[Sample],
    buckets: Iterable[Sample],
    saturation: Iterable[Sample],
    instances: Mapping[GroupKey, int],
) -> tuple[WorkloadRow, ...]:
    """One row per workload the platform knows or Prometheus reports, sorted by namespace and name."""
    by_class: dict[GroupKey, dict[str, float]] = {}
    for sample in counts:
        table = by_class.setdefault(_key(group, sample.labels), {})
        cls = sample.labels.get("classification", "success")
        table[cls] = table.get(cls, 0.0) + sample.value
    histograms: dict[GroupKey, list[Bucket]] = {}
    for sample in buckets:
        key = _key(group, sample.labels)
        histograms.setdefault(key, []).append((parse_le(sample.labels.get("le", "+Inf")), sample.value))
    signals: dict[tuple[GroupKey, str], float] = {}
    for sample in saturation:
        signal = (_key(group, sample.labels), sample.labels.get(promql.SIGNAL_LABEL, ""))
        signals[signal] = signals.get(signal, 0.0) + sample.value
    keys = set(instances) | set(by_class) | set(histograms) | {key for key, _ in signals}
    rows = []
    for key in sorted(keys):
        classes = by_class.get(key, {})
        values = [quantile(q, histograms.get(key, [])) for q in QUANTILES]
        p50, p95, p99 = (None if v is None else v * 1000.0 for v in values)
        meshed = signals.get((key, "meshed"))
        rows.append(
            WorkloadRow(
                namespace=key[0],
                name=key[-1] if len(key) > 1 else key[0],
                # No `up` series for a workload the platform lists: Prometheus scrapes none of its proxies.
                meshed=round(meshed) if meshed is not None else (0 if key in instances else None),
                instances=instances.get(key) if instances else None,
                counts=Counts(success=classes.get("success", 0.0), failure=classes.get("failure", 0.0)),
                latency=Latency(p50, p95, p99),
                in_flight=_whole(signals.get((key, "in_flight"))),
                tcp_connections=_whole(signals.get((key, "tcp"))),
            )
        )
    return tuple(rows)


def _key(group: Sequence[str], labels: Mapping[str, str]) -> GroupKey:
    return tuple(labels.get(name, "") for name in group)


def _whole(value: float | None) -> int | None:
    # A scrape is not atomic: a request may be counted before its response is, never below zero.
    return None if value is None else max(0, round(value))
