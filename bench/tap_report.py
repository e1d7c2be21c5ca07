"""From a tap benchmark run's raw measurements to its summary (clean ramp rate, paired differences,
budgets) and TAP.md. Pure functions of the results dict, so a test can feed them made-up runs.
"""

from __future__ import annotations

import statistics
from typing import Any

MIB = 1024.0
ARMS = ("no-tap", "untapped", "tapped")
CPU_NOISE = 0.05  # "≈ 0": having tap may cost at most this share of the no-tap proxy's CPU per request

# (key, what, limit, "max" when the measurement must stay at or under the limit, "min" when at or over)
BUDGETS: tuple[tuple[str, str, float, str], ...] = (
    ("clean_events_per_s", "events/s delivered to one client with 0 drops", 5000.0, "min"),
    ("tapped_p99_added_pct", "tapping adds to the proxied p99 at 1,000 rps (%)", 10.0, "max"),
    ("untapped_cpu_added_pct", "an untapped proxy pays for having tap: CPU per request (%)", CPU_NOISE * 100, "max"),
    ("tapped_rss_mib", "proxy RSS with a tap attached at 1,000 rps (MiB)", 50.0, "max"),
)


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _cpu_us(run: dict[str, Any]) -> float | None:
    vcpu = sum(p["vcpu"] for p in run["proxies"].values())
    return vcpu / run["achieved_rps"] * 1e6 if run["achieved_rps"] > 0 else None


def _rss_peak(run: dict[str, Any]) -> int:
    return max((p["rss_peak_kib"] for p in run["proxies"].values()), default=0)


def ramp_summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest event rate delivered with nothing lost, and the first rate that lost or saturated."""
    clean = [s for s in steps if s["clean"]]
    best = max(clean, key=lambda s: s["events_per_s"], default=None)
    first_bad = next((s for s in steps if not s["clean"]), None)
    # Rates the proxy could not keep up with still delivered what they delivered: 0 drops is 0 drops.
    lossless = [s for s in steps if s["events"] == s["expected_events"] and not s["queue_full"]]
    return {
        "lossless_events_per_s": max((s["events_per_s"] for s in lossless), default=0.0),
        "clean_events_per_s": best["events_per_s"] if best else 0.0,
        "clean_rate": best["rate"] if best else None,
        "first_unclean_rate": first_bad["rate"] if first_bad else None,
        "first_unclean_why": step_verdict(first_bad) if first_bad else "",
    }


def step_verdict(step: dict[str, Any]) -> str:
    why = []
    if step["queue_full"]:
        why.append(f"{step['queue_full']} requests dropped")
    if step["rate_limited"]:
        why.append(f"{step['rate_limited']} rate-limited")
    missing = step["expected_events"] - step["events"]
    if missing and not step["queue_full"]:
        why.append(f"{missing} events missing")
    if not step["valid"]:
        why.extend(step["problems"])
    return "; ".join(why) if why else "0 drops"


def latency_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: median percentiles, CPU µs/request and RSS peak over valid runs; per round the paired
    differences tapped − untapped and untapped − no-tap (a round pairs only valid runs)."""
    arms: dict[str, Any] = {}
    for arm in ARMS:
        mine = [r for r in runs if r["arm"] == arm]
        valid = [r for r in mine if r["valid"]]
        entry: dict[str, Any] = {"runs": len(mine), "valid_runs": len(valid),
                                 "noisy_runs": sum(1 for r in valid if r.get("driver_limited"))}  # fmt: skip
        if valid:
            for key in ("p50", "p90", "p99", "p99.9"):
                entry[key] = statistics.median(r["latency_ms"][key] for r in valid)
            cpus = [c for c in (_cpu_us(r) for r in valid) if c is not None]
            entry["cpu_us_per_request"] = statistics.median(cpus) if cpus else None
            entry["rss_peak_kib"] = max(_rss_peak(r) for r in valid)
            entry["driver_lag_p99_ms"] = max(r["driver_lag_ms"]["p99"] for r in valid)
        arms[arm] = entry
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in runs:
        if r["valid"]:
            by_round.setdefault(r["round"], {})[r["arm"]] = r
    pairs: dict[str, Any] = {}
    for name, arm, base in (("tap_cost", "tapped", "untapped"), ("having_tap", "untapped", "no-tap")):
        both = [(rd[arm], rd[base]) for rd in by_round.values() if arm in rd and base in rd]
        cpu = [(_cpu_us(a), _cpu_us(b)) for a, b in both]
        pairs[name] = {
            "rounds": len(both),
            "added_p50_ms": _spread([a["latency_ms"]["p50"] - b["latency_ms"]["p50"] for a, b in both]),
            "added_p99_ms": _spread([a["latency_ms"]["p99"] - b["latency_ms"]["p99"] for a, b in both]),
            "p99_ratio": _spread(
                [a["latency_ms"]["p99"] / b["latency_ms"]["p99"] for a, b in both if b["latency_ms"]["p99"] > 0]
            ),  # fmt: skip
            "added_cpu_us": _spread([a - b for a, b in cpu if a is not None and b is not None]),
            "cpu_ratio": _spread([a / b for a, b in cpu if a is not None and b]),
        }
    return {"arms": arms, "pairs": pairs}


def _median(spread: dict[str, float] | None) -> float | None:
    return None if spread is None else spread["median"]


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    ramp = ramp_summary(results.get("ramp", []))
    lat = latency_summary(results.get("latency_runs", []))
    tap_ratio = _median(lat["pairs"]["tap_cost"]["p99_ratio"])
    cpu_ratio = _median(lat["pairs"]["having_tap"]["cpu_ratio"])
    # The real entry point's memory when the job measured it; bench.sidecar's (no control client) if not.
    mesh = results.get("mesh")
    tapped_rss = mesh["rss_peak_kib"] if mesh else lat["arms"]["tapped"].get("rss_peak_kib")
    measured = {
        "clean_events_per_s": ramp["clean_events_per_s"] if results.get("ramp") else None,
        "tapped_p99_added_pct": None if tap_ratio is None else (tap_ratio - 1.0) * 100,
        "untapped_cpu_added_pct": None if cpu_ratio is None else (cpu_ratio - 1.0) * 100,
        "tapped_rss_mib": None if tapped_rss is None else tapped_rss / MIB,
    }
    budgets = []
    for key, what, limit, kind in BUDGETS:
        value = measured[key]
        ok = None if value is None else (value <= limit if kind == "max" else value >= limit)
        budgets.append({"key": key, "what": what, "limit": limit, "kind": kind, "value": value, "pass": ok})
    runs = results.get("latency_runs", [])
    complete = (bool(runs) and all(r["valid"] for r in runs) and bool(results.get("ramp"))
                and not results.get("crashed"))  # fmt: skip
    complete = complete and (not mesh or bool(mesh["valid"]))
    return {"ramp": ramp, "latency": lat, "budgets": budgets, "complete": complete,
            "rss_of": "python -m meshctl.proxy" if mesh else "bench.sidecar"}  # fmt: skip


def _f(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _sp(spread: dict[str, float] | None, digits: int = 3) -> str:
    if spread is None:
        return "–"
    text = _f(spread["median"], digits, sign=True)
    if spread["min"] != spread["max"]:
        text += f" ({_f(spread['min'], digits, True)}…{_f(spread['max'], digits, True)})"
    return text


def render_markdown(results: dict[str, Any]) -> str:
    s, m, st = results["summary"], results["machine"], results["settings"]
    out = [
        f"# Tap benchmark — {results['date']}, commit {results['commit']}{' (dirty)' if results['dirty'] else ''}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}; {m['nginx']}; Python {m['python']}. "
        f"**Load average before the run {m['loadavg']}, after it {m.get('loadavg_after', '?')}** "
        "(the machine is shared; other jobs' load lands on both cores).  ",
        f"Command: `{results['command']}` ({results['wall_s']:.0f} s). Raw results: `bench/results/"
        f"{results['json_name']}` on the machine that ran it (not committed).",
        "",
        "Topology: nginx (1 KiB body) ← one of our sidecars, outbound listener, plaintext (bench.run's one-hop "
        "arm). The proxies are pinned to CPU 1; nginx, the open-loop driver and the tap client to CPU 0. "
        "**no-tap** = a proxy without a tap listener (the hub is never installed); **untapped** = a proxy with "
        "its tap listener and nobody subscribed; **tapped** = the same proxy with one headless client "
        f"subscribed to every request (`bench.tap_counter --client {st['client']}`). "
        "untapped and tapped are one process, so their difference is the subscription alone.",
        "",
        "## Budgets (DESIGN.md)",
        "",
        "| budget | limit | measured | |",
        "|---|---|---|---|",
    ]
    for b in s["budgets"]:
        verdict = "–" if b["pass"] is None else ("pass" if b["pass"] else "**FAIL**")
        sign = "≤" if b["kind"] == "max" else "≥"
        out.append(f"| {b['what']} | {sign} {b['limit']:g} | {_f(b['value'], 1)} | {verdict} |")
    out += [
        "",
        "The p99 figure is the median over rounds of tapped p99 / untapped p99 of the same round, minus 1. "
        f'"≈ 0" for an untapped proxy is read as at most {CPU_NOISE:.0%} more CPU per request than the '
        "no-tap proxy (median of the rounds' ratios). "
        + ("RSS is the peak of `python -m meshctl.proxy` (control client and all; two hops with mTLS, tap on the "
           "client side) while tapped at the latency rate."
           if s["rss_of"] == "python -m meshctl.proxy" else
           "RSS is bench.sidecar's, which is not the sidecar's memory (no control client, but it signs its "
           "own certificate with cryptography): this run did not measure `python -m meshctl.proxy`."),
        "",
    ]
    out += _ramp_table(results, s)
    out += _latency_tables(results, s)
    out += _memory_table(results, s)
    return "\n".join(out) + "\n"


def _ramp_table(results: dict[str, Any], s: dict[str, Any]) -> list[str]:
    st = results["settings"]
    r = s["ramp"]
    out = [
        "## Events delivered to one tap client at rising rates",
        "",
        f"Open loop through the tapped proxy, {st['ramp_seconds']:g} s after {st['ramp_warmup']:g} s warm-up per "
        f"rate, {st['connections']} connections; each request is 3 events (request, response, end). Drops are "
        "what the proxy's drop notices reported (requests whose events its queue for the client could not hold); "
        "the ramp stops at the first rate that lost anything or that the proxy could not keep up with.",
        "",
        "| offered rps | achieved rps | events expected | events received | events/s | dropped (queue full) "
        "| rate-limited | proxy CPU (cores) | proxy µs/req | client CPU (cores) | p99 ms | |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in results.get("ramp", []):
        span = step["requests"] / step["achieved_rps"] if step["achieved_rps"] else 0.0
        vcpu = step["proxy"]["vcpu"]
        cpu_us = vcpu / step["achieved_rps"] * 1e6 if step["achieved_rps"] else None
        client = step["client_cpu_s"] / span if span else None
        out.append(
            f"| {step['rate']:g} | {step['achieved_rps']:.0f} | {step['expected_events']} | {step['events']} | "
            f"{step['events_per_s']:.0f} | {step['queue_full']} | {step['rate_limited']} | {vcpu:.2f} | "
            f"{_f(cpu_us, 0)} | {_f(client, 2)} | {step['latency_ms']['p99']:.3f} | {step_verdict(step)} |"
        )
    best = f"{r['clean_events_per_s']:.0f} events/s (at {r['clean_rate']:g} rps)" if r["clean_rate"] else "none"
    out += ["", f"Highest rate delivered with 0 drops while the proxy kept up: **{best}**; with 0 drops at any "
            f"rate (a saturated proxy included): {r['lossless_events_per_s']:.0f} events/s."
            + (f" First rate that was not clean: {r['first_unclean_rate']:g} rps ({r['first_unclean_why']})."
               if r["first_unclean_rate"] is not None else " Every offered rate was clean: the ceiling is higher."),
            ""]  # fmt: skip
    return out


def _latency_tables(results: dict[str, Any], s: dict[str, Any]) -> list[str]:
    st = results["settings"]
    lat = s["latency"]
    out = [
        f"## Latency and CPU at {st['rate']:g} rps",
        "",
        f"Open-loop driver (`bench.openloop`, latency from each request's intended send time), {st['connections']} "
        f"connections, {st['duration']:g} s after {st['warmup']:g} s warm-up, {st['rounds']} round(s), the arms' "
        "order reversed every other round. Medians over valid runs; noisy = valid runs whose driver was late at "
        "p99 (> 1 ms, charged to the arm).",
        "",
        "| arm | p50 ms | p90 ms | p99 ms | p99.9 ms | CPU µs/req | RSS peak MiB | driver lag p99 ms | valid (noisy) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        a = lat["arms"][arm]
        rss = a.get("rss_peak_kib")
        out.append(
            f"| {arm} | {_f(a.get('p50'))} | {_f(a.get('p90'))} | {_f(a.get('p99'))} | {_f(a.get('p99.9'))} | "
            f"{_f(a.get('cpu_us_per_request'), 1)} | {_f(None if rss is None else rss / MIB, 1)} | "
            f"{_f(a.get('driver_lag_p99_ms'))} | {a['valid_runs']}/{a['runs']} ({a['noisy_runs']}) |"
        )
    out += [
        "",
        "Paired in each round (median, (min…max) over rounds):",
        "",
        "| comparison | rounds | added p50 ms | added p99 ms | p99 ratio | added CPU µs/req | CPU ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, what in (("tap_cost", "tapped − untapped (what tapping adds)"),
                      ("having_tap", "untapped − no-tap (what having tap costs)")):  # fmt: skip
        p = lat["pairs"][key]
        ratio = p["p99_ratio"]
        cpu_ratio = p["cpu_ratio"]
        out.append(
            f"| {what} | {p['rounds']} | {_sp(p['added_p50_ms'])} | {_sp(p['added_p99_ms'])} | "
            f"{_f(None if ratio is None else ratio['median'], 3)} | {_sp(p['added_cpu_us'], 1)} | "
            f"{_f(None if cpu_ratio is None else cpu_ratio['median'], 3)} |"
        )
    tapped = [r for r in results.get("latency_runs", []) if r["arm"] == "tapped"]
    if tapped:
        got = sum(int(r["tap_client"].get("events", 0)) for r in tapped)
        lost = sum(int(r["tap_client"].get("queue_full", 0)) for r in tapped)
        vcpu = [r["tap_client_vcpu"] for r in tapped if "tap_client_vcpu" in r]
        text = f"The tapped runs' client received {got} events in all; the proxy reported {lost} requests dropped."
        if vcpu:
            text += (f" The client took {statistics.median(vcpu):.2f} cores of CPU 0 (median) beside the driver and "
                     "nginx, so part of the tapped arm's driver lag is the client's; CPU µs/req is the proxy's own "
                     "(CPU 1) and does not include it.")  # fmt: skip
        out += ["", text]
    out.append("")
    return out


def _memory_table(results: dict[str, Any], s: dict[str, Any]) -> list[str]:
    idle, pss, after = results["idle_rss_kib"], results["idle_pss_kib"], results.get("after_rss_kib", {})
    names = results["proxies"]
    tapped = s["latency"]["arms"]["tapped"].get("rss_peak_kib")
    out = [
        "## Memory (RSS, MiB)",
        "",
        "| proxy | idle | idle PSS | peak while tapped at the latency rate | after the ramp |",
        "|---|---|---|---|---|",
    ]
    for label, name in names.items():
        peak = tapped if label == "tap" else None
        out.append(f"| bench.sidecar, {label} | {idle[name] / MIB:.1f} | {pss[name] / MIB:.1f} | "
                   f"{_f(None if peak is None else peak / MIB, 1)} | {_f(after.get(name, 0) / MIB, 1)} |")  # fmt: skip
    mesh = results.get("mesh")
    if mesh:
        out.append(f"| `python -m meshctl.proxy`, client side of two hops, tap on | {mesh['idle_rss_kib'] / MIB:.1f} | "
                   f"{mesh['idle_pss_kib'] / MIB:.1f} | {mesh['rss_peak_kib'] / MIB:.1f} | – |")  # fmt: skip
        got = mesh.get("tap_client", {})
        out += ["", f"The real entry point's tapped run: {mesh['achieved_rps']:.0f} rps achieved, p99 "
                f"{mesh['latency_ms']['p99']:.3f} ms, {got.get('events', 0)} events to the client, "
                f"{got.get('queue_full', 0)} requests dropped"
                + (f"; {'; '.join(mesh['problems'])}" if mesh["problems"] else "") + "."]  # fmt: skip
    crashed = results.get("crashed") or []
    if crashed:
        out += ["", f"**Exited during the run:** {', '.join(crashed)}."]
    out.append("")
    return out
