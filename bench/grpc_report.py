"""The gRPC section of the bench report: per arm the median over rounds, × direct, CPU per call, statuses."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

BASELINE = "direct"
TWO_HOP = "mesh-2hop-mtls"  # the arm DESIGN.md's budget is stated for


def summarize_grpc(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm, in the order first run: calls/s (median, min, max), latency, CPU and errors over rounds."""
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        mine = [r for r in runs if r["arm"] == arm]
        rates = [r["calls_per_s"] for r in mine]
        rate = statistics.median(rates)
        cpu = statistics.median(sum(r["proxy_cpu"].values()) for r in mine) if mine[0]["proxy_cpu"] else None
        statuses: Counter[str] = Counter()
        for r in mine:
            statuses.update(r["errors_by_status"])
        out[arm] = {
            "calls_per_s": rate,
            "calls_per_s_spread": {"median": rate, "min": min(rates), "max": max(rates)},
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in mine),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in mine),
            "proxy_cpu": cpu,
            "cpu_us_per_call": cpu / rate * 1e6 if cpu is not None and rate > 0 else None,
            "server_cpu": statistics.median(r["server_cpu"] for r in mine),
            "client_cpu": statistics.median(r["client_cpu"] for r in mine),
            "in_flight": min(r["max_in_flight"] for r in mine),
            "errors": sum(statuses.values()),
            "errors_by_status": dict(sorted(statuses.items())),
            "rounds": len(mine),
        }
    base = out.get(BASELINE, {}).get("calls_per_s")
    for entry in out.values():
        entry["x_direct"] = entry["calls_per_s"] / base if base else None
    # What each arm would carry with its cores to itself, relative to direct: a shared machine takes part
    # of a core away from a run, not from the CPU a call costs. An arm is as fast as its slower core: the
    # proxies' (CPU 1) or the client's and server's (CPU 0).
    base_capacity = _capacity(out.get(BASELINE))
    for entry in out.values():
        capacity = _capacity(entry)
        entry["x_direct_per_cpu"] = capacity / base_capacity if capacity and base_capacity else None
    return out


def _capacity(entry: dict[str, Any] | None) -> float | None:
    if not entry or entry["calls_per_s"] <= 0:
        return None
    cores = [entry["server_cpu"] + entry["client_cpu"], *([entry["proxy_cpu"]] if entry["proxy_cpu"] else [])]
    if min(cores) <= 0:
        return None
    return float(entry["calls_per_s"] / max(cores))


def _num(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _rate(entry: dict[str, Any]) -> str:
    spread = entry["calls_per_s_spread"]
    if entry["rounds"] < 2:
        return f"{entry['calls_per_s']:.0f}"
    return f"{entry['calls_per_s']:.0f} ({spread['min']:.0f}…{spread['max']:.0f})"


def grpc_markdown(arms: dict[str, Any], settings: dict[str, Any], skipped: str = "") -> list[str]:
    """The report's gRPC section (no lines when the section did not run and says nothing about why)."""
    if not arms and not skipped:
        return []
    lines = [
        f"## gRPC unary calls, {settings.get('grpc_in_flight', 64)} in flight (`bench.grpc_load`, "
        f"{settings.get('grpc_seconds', 0):g} s after {settings.get('grpc_warmup', 0):g} s warm-up, "
        f"median of {settings.get('rounds', 1)} round(s))",
        "",
    ]
    if skipped:
        return lines + [f"Not measured: {skipped}", ""]
    lines += [
        "A grpc.aio client keeps the calls in flight on one channel (`Ratings/GetRating`, the demo's contract) "
        "against a grpc.aio server; closed loop, like wrk. Proxies on CPU 1 (both on it in the two-hop arm); "
        "the server and the client on CPU 0. CPU is sampled over the measured window only; CPU µs/call = the "
        "proxies' CPU over the calls they carried. Server and client CPU near 1.0 together mean CPU 0, not "
        "the proxies, was the bound. *× direct per CPU-s* compares calls per second as if every core of the "
        "arm were its own (calls/s over the busier core's CPU use, CPU 0's or the proxies'), with direct's "
        "likewise: the steadier figure when other processes share the cores.",
        "",
        "| arm | × direct | × direct per CPU-s | calls/s (min…max) | p50 ms | p99 ms | proxy CPU (cores) "
        "| CPU µs/call | server CPU | client CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, e in arms.items():
        errors = ", ".join(f"{code} {n}" for code, n in e["errors_by_status"].items()) or "0"
        lines.append(
            f"| {arm} | {_num(e['x_direct'], '.2f')} | {_num(e['x_direct_per_cpu'], '.2f')} | {_rate(e)} "
            f"| {e['p50_ms']:.2f} | {e['p99_ms']:.2f} "
            f"| {_num(e['proxy_cpu'], '.2f')} | {_num(e['cpu_us_per_call'], '.0f')} | {e['server_cpu']:.2f} "
            f"| {e['client_cpu']:.2f} | {errors} |"
        )
    wanted = settings.get("grpc_in_flight", 0)
    short = [f"{arm} ({e['in_flight']})" for arm, e in arms.items() if e["in_flight"] < wanted]
    if short:
        lines += ["", "Fewer calls in flight than asked for (the client could not keep up): " + ", ".join(short)]
    return lines + [""]
