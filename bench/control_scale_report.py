"""The arithmetic and the tables of `bench.control_scale`: raw measurements per mesh size in, a curve out.

Every figure is derived here from what the run recorded (receipt times, /proc samples, the control
plane's log), so a stored JSON can be rendered again and the derivations are unit-tested.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bench.stats import percentile

BUDGET_REACH_S = 1.0  # an endpoint change reaches 1,000 proxies within this (p99)
BUDGET_REACH_AT = 1000
BUDGET_CERTS_PER_S = 200.0
BUDGET_RSS_KIB_PER_PROXY = 50.0

# "2026-11-29 08:41:32,123 INFO meshctl.control.store: snapshot 1764405692124: 100 services, 0 resources"
_PUBLISHED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ meshctl\.control\.store: snapshot (\d+):", re.MULTILINE
)


def published_times(log_text: str) -> dict[int, float]:
    """Snapshot version -> wall-clock time the control plane published it (its log's local time, ms)."""
    out: dict[int, float] = {}
    for match in _PUBLISHED.finditer(log_text):
        stamp, millis, version = match.groups()
        out[int(version)] = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000.0
    return out


def _pcts(values: Iterable[float]) -> dict[str, float] | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return {"p50": percentile(ordered, 50.0), "p99": percentile(ordered, 99.0), "max": ordered[-1]}


def change_summary(changes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per change: `written` (control.json replaced), `published` (the control plane's log) and `times`
    (each proxy's receipt). Reach = published -> last proxy; delivery = published -> each proxy."""
    reach: list[float] = []
    from_write: list[float] = []
    detect: list[float] = []
    spread: list[float] = []
    delivery: list[float] = []
    for change in changes:
        times = change["times"]
        if not times:
            continue
        last, first = max(times), min(times)
        from_write.append(last - change["written"])
        spread.append(last - first)
        published = change.get("published")
        if published is not None:
            # The log has ms resolution: a receipt may appear to precede its publication by < 1 ms.
            reach.append(max(0.0, last - published))
            detect.append(max(0.0, published - change["written"]))
            delivery.extend(max(0.0, t - published) for t in times)
    return {
        "changes": len(from_write),
        "reach_s": _pcts(reach),
        "delivery_s": _pcts(delivery),
        "from_write_s": _pcts(from_write),
        "detect_s": _pcts(detect),
        "spread_s": _pcts(spread),
    }


def _per(value: float | None, count: float) -> float | None:
    return None if value is None or count <= 0 else value / count


def size_summary(size: dict[str, Any], openssl: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row of the curve for one mesh size; `openssl` is the run's signing baseline."""
    n = size["proxies"]
    cpu = size.get("cpu_s", {})
    rss = size.get("rss_kib", {})
    certify = size.get("certify") or {}
    changes = change_summary(size.get("changes", []))
    rss_delta = rss["connected"] - rss["before"] if "connected" in rss and "before" in rss else None
    certs_per_s = _per(certify.get("count"), certify.get("seconds", 0.0)) if not certify.get("errors") else None
    openssl = openssl or {}
    openssl_rate = _per(openssl.get("count"), openssl.get("seconds", 0.0))
    # Per CPU-second: what a core would give; the figure to trust when other work shares the machine.
    cpu_rate = _per(certify.get("count"), cpu.get("certify", 0.0)) if certs_per_s is not None else None
    openssl_cpu_rate = _per(openssl.get("count"), openssl.get("cpu_s", 0.0))
    sizes = sorted(c["bytes"] for c in size.get("changes", []) if c.get("bytes"))
    return {
        "proxies": n,
        "delivery": size.get("delivery", "full"),  # runs before deltas existed sent complete snapshots
        "snapshot_bytes": size.get("snapshot_bytes"),
        "message_bytes": sizes[len(sizes) // 2] if sizes else None,  # what a change sent each proxy
        **changes,
        "cpu_ms_per_change": _per(1000 * cpu["changes"], changes["changes"]) if "changes" in cpu else None,
        "cpu_us_per_change_per_proxy": _per(1e6 * cpu["changes"], changes["changes"] * n) if "changes" in cpu else None,
        "idle_cpu_us_per_s_per_proxy": _per(1e6 * cpu["idle"], cpu.get("idle_seconds", 0.0) * n)
        if "idle" in cpu
        else None,
        "rss_kib_per_proxy": _per(rss_delta, n),
        "rss_mib": {k: v / 1024 for k, v in rss.items()},
        "certs_per_s": certs_per_s,
        "cpu_ms_per_cert": _per(1000 * cpu["certify"], certify.get("count", 0)) if "certify" in cpu else None,
        "openssl_certs_per_s": openssl_rate,
        "certs_vs_openssl": None if certs_per_s is None or not openssl_rate else certs_per_s / openssl_rate,
        "certs_per_cpu_s": cpu_rate,
        "certs_per_cpu_s_vs_openssl": None if cpu_rate is None or not openssl_cpu_rate else cpu_rate / openssl_cpu_rate,
        "clients_cpu_ms_per_change": _per(1000 * cpu["clients_changes"], changes["changes"])
        if "clients_changes" in cpu
        else None,
    }


def budgets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """DESIGN.md's control-plane budgets, judged at the largest size (certificates: at every size), on
    the runs with deltas when there are some (what proxies ask for)."""
    rows = [r for r in rows if r["delivery"] == "delta"] or list(rows)
    if not rows:
        return []
    largest = max(rows, key=lambda r: r["proxies"])
    at_budget = next((r for r in rows if r["proxies"] == BUDGET_REACH_AT), None)
    reach = (at_budget or {}).get("reach_s") or {}
    rates = [r["certs_per_s"] for r in rows if r["certs_per_s"] is not None]
    per_proxy = largest["rss_kib_per_proxy"]
    return [
        _verdict(f"endpoint change reaches {BUDGET_REACH_AT:,} proxies, p99", f"≤ {BUDGET_REACH_S:g} s",
                 reach.get("p99"), lambda v: v <= BUDGET_REACH_S, "{:.3f} s"),
        _verdict("certificates issued per second (lowest size)", f"≥ {BUDGET_CERTS_PER_S:g}",
                 min(rates) if rates else None, lambda v: v >= BUDGET_CERTS_PER_S, "{:.0f}"),
        _verdict(f"control-plane RSS per connected proxy ({largest['proxies']:,} proxies)",
                 f"≤ {BUDGET_RSS_KIB_PER_PROXY:g} KiB", per_proxy, lambda v: v <= BUDGET_RSS_KIB_PER_PROXY,
                 "{:.1f} KiB"),
    ]  # fmt: skip


def _verdict(what: str, limit: str, value: float | None, ok: Any, fmt: str) -> dict[str, Any]:
    measured = "not measured" if value is None else fmt.format(value)
    verdict = "not measured" if value is None else ("pass" if ok(value) else "fail")
    return {"budget": what, "limit": limit, "measured": measured, "value": value, "verdict": verdict}


def _ms(p: dict[str, float] | None, key: str) -> str:
    return "–" if not p else f"{1000 * p[key]:.0f}"


def _f(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def render_markdown(results: dict[str, Any]) -> str:
    rows = [size_summary(s, results.get("openssl")) for s in results["sizes"]]
    machine = results.get("machine", {})
    lines = [
        "# Control-plane scale",
        "",
        f"{results.get('date', '?')}, commit {results.get('commit', '?')}, `{results.get('command', '')}`; "
        f"{machine.get('cpu', '?')} ({machine.get('cpus', '?')} CPUs), load average "
        f"{results.get('loadavg_before', '?')} before, {results.get('loadavg_after', '?')} after.",
        "",
        "Simulated proxies: one TLS connection each with one Discovery.Watch stream and a PING every 10 s, "
        "through the proxy's own HTTP/2 gRPC client (CPU 0); the control plane on CPU 1. An endpoint change "
        "is a rewrite of control.json; *reach* runs from the snapshot's publication (the control plane's "
        "log) to its receipt by the last proxy, *from write* adds the file poll (≤ 1 s). *Changes as*: the "
        "proxies ask for deltas (after the first snapshot, only what changed) or get complete snapshots; "
        "*message* is what one change sent each proxy (median).",
        "",
        "| proxies | changes as | snapshot | message | reach p50 / p99 ms | delivery p50 / p99 ms "
        "| from write p50 / p99 ms | CPU per change | per proxy | clients' CPU per change | idle CPU per proxy "
        "| RSS per proxy | certs/s | × openssl | certs per CPU-s | × openssl |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['proxies']:,} | {r['delivery']} "
            f"| {_f(r['snapshot_bytes'] and r['snapshot_bytes'] / 1024, '{:.1f} KiB')} "
            f"| {_f(r['message_bytes'] and r['message_bytes'] / 1024, '{:.1f} KiB')} "
            f"| {_ms(r['reach_s'], 'p50')} / {_ms(r['reach_s'], 'p99')} "
            f"| {_ms(r['delivery_s'], 'p50')} / {_ms(r['delivery_s'], 'p99')} "
            f"| {_ms(r['from_write_s'], 'p50')} / {_ms(r['from_write_s'], 'p99')} "
            f"| {_f(r['cpu_ms_per_change'], '{:.1f} ms')} | {_f(r['cpu_us_per_change_per_proxy'], '{:.0f} µs')} "
            f"| {_f(r['clients_cpu_ms_per_change'], '{:.0f} ms')} "
            f"| {_f(r['idle_cpu_us_per_s_per_proxy'], '{:.1f} µs/s')} | {_f(r['rss_kib_per_proxy'], '{:.1f} KiB')} "
            f"| {_f(r['certs_per_s'], '{:.0f}')} | {_f(r['certs_vs_openssl'], '{:.2f}')} "
            f"| {_f(r['certs_per_cpu_s'], '{:.0f}')} | {_f(r['certs_per_cpu_s_vs_openssl'], '{:.2f}')} |"
        )
    lines += ["", "| budget | limit | measured | |", "|---|---|---|---|"]
    for b in budgets(rows):
        verdict = b["verdict"] if b["verdict"] != "fail" else "**fail**"
        lines.append(f"| {b['budget']} | {b['limit']} | {b['measured']} | {verdict} |")
    openssl = results.get("openssl") or {}
    if openssl.get("error"):
        lines += ["", f"openssl baseline not measured: {openssl['error']}"]
    elif openssl:
        per_cpu = f", {openssl['count'] / openssl['cpu_s']:.0f} per CPU-second" if openssl.get("cpu_s") else ""
        lines += ["", f"Baseline: `openssl ca` signed the same {openssl['count']:,} CSRs in one process, "
                      f"{openssl['count'] / openssl['seconds']:.0f} certificates/s on CPU 1{per_cpu}."]  # fmt: skip
    errors = [f"- {s['proxies']:,} proxies ({s.get('delivery', 'full')}): {s['error']}"
              for s in results["sizes"] if s.get("error")]  # fmt: skip
    if errors:
        lines += ["", "Incomplete sizes:", *errors]
    return "\n".join(lines) + "\n"
