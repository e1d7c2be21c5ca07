"""From a run's raw measurements to its summary (medians, added latency, ratios, budgets) and markdown.

Absolute figures on a shared 2-core machine move with whatever else runs; what the job reports first are
figures relative to baselines measured in the same job: latency added over `direct` in the same round,
and requests/s as a multiple of HAProxy's and of direct's.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.cpu_split import split_markdown
from bench.grpc_report import grpc_markdown, summarize_grpc

# Process names of our proxies judged against the memory budgets: the real entry point only (the control
# plane is not on the data path; bench.sidecar's one-hop proxy, "sidecar-*", lacks the control client).
OURS_PREFIX = "proxy-"
TWO_HOP = "mesh-2hop-mtls"
ONE_HOP = "mesh-1hop"
PEER = "haproxy"
PEER_TWO_HOP = "haproxy-2hop-mtls"  # two HAProxies with mTLS: the peer in the two-hop budgets' own shape
BASELINE = "direct"
# Each of our arms against the language floor (bench.floor) of the same shape.
FLOOR_OF = {ONE_HOP: "floor-1hop", TWO_HOP: "floor-2hop-tls"}
BUDGET_RATE = 1000.0  # the rate DESIGN.md states the latency and memory budgets at
MIB = 1024.0

# (key, what, limit, "max" when the measurement must stay at or under the limit, "min" when at or over)
BUDGETS: tuple[tuple[str, str, float, str], ...] = (
    ("added_p50_2hop_ms", "two sidecars with mTLS at 1,000 rps: added p50 (ms)", 0.5, "max"),
    ("added_p99_2hop_ms", "two sidecars with mTLS at 1,000 rps: added p99 (ms)", 1.0, "max"),
    ("throughput_1hop_x_haproxy", "one-core throughput, one proxy (× HAProxy)", 0.5, "min"),
    ("throughput_2hop_x_haproxy", "one-core throughput, two proxies with mTLS (× HAProxy)", 0.33, "min"),
    ("idle_rss_mib", "proxy RSS idle (MiB)", 35.0, "max"),
    ("rate_rss_mib", "proxy RSS at 1,000 rps (MiB)", 50.0, "max"),
    ("h2_2hop_x_haproxy", "HTTP/2 through two proxies with mTLS (× HAProxy's h2)", 0.15, "min"),
    ("grpc_2hop_x_direct", "gRPC unary, 64 in flight, two proxies with mTLS (× direct)", 0.6, "min"),
)


def rate_key(rate: float) -> str:
    """`1000`, `200`, `12.5`: the JSON key of an offered rate."""
    return f"{rate:g}"


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _cpu_us_per_request(vcpu: float, rps: float) -> float | None:
    return vcpu / rps * 1e6 if rps > 0 else None


def _latency_at(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm at one rate: median percentiles over valid runs, and latency added over the same round's
    direct run (a round whose direct run is invalid adds nothing)."""
    direct = {r["round"]: r for r in runs if r["arm"] == BASELINE and r["valid"]}
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        mine = [r for r in runs if r["arm"] == arm]
        valid = [r for r in mine if r["valid"]]
        entry: dict[str, Any] = {"runs": len(mine), "valid_runs": len(valid),
                                 "noisy_runs": sum(1 for r in valid if r.get("driver_limited")),
                                 "problems": sorted({p for r in mine for p in r["problems"]})}  # fmt: skip
        if valid:
            for key in ("p50", "p90", "p99", "p99.9", "max"):
                entry[key] = statistics.median(r["latency_ms"][key] for r in valid)
            entry["driver_lag_p99_ms"] = max(r["driver_lag_ms"]["p99"] for r in valid)
            vcpu = statistics.median(sum(p["vcpu"] for p in r["proxies"].values()) for r in valid)
            rps = statistics.median(r["achieved_rps"] for r in valid)
            entry["proxy_vcpu"] = vcpu if arm != BASELINE else None
            entry["cpu_us_per_request"] = _cpu_us_per_request(vcpu, rps) if arm != BASELINE else None
            paired = [r for r in valid if r["round"] in direct]
            if paired and arm != BASELINE:
                for key in ("p50", "p90", "p99"):
                    entry[f"added_{key}"] = _spread(
                        [r["latency_ms"][key] - direct[r["round"]]["latency_ms"][key] for r in paired]
                    )
        out[arm] = entry
    return out


def _latency(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = dict.fromkeys(rate_key(r["rate"]) for r in runs)
    return {rate: _latency_at([r for r in runs if rate_key(r["rate"]) == rate]) for rate in rates}


def _throughput(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        mine = [r for r in runs if r["arm"] == arm]
        rps = statistics.median(r["rps"] for r in mine)
        cpu = statistics.median(sum(r["proxy_cpu"].values()) for r in mine) if mine[0]["proxy_cpu"] else None
        out[arm] = {
            "rps": rps,
            "rps_spread": _spread([r["rps"] for r in mine]),
            "errors": sum(r["errors"] for r in mine),
            "proxy_cpu": cpu,
            "cpu_us_per_request": None if cpu is None else _cpu_us_per_request(cpu, rps),
        }
    for ratio, ref in (("x_haproxy", PEER), ("x_direct", BASELINE)):
        base = out.get(ref, {}).get("rps")
        for entry in out.values():
            entry[ratio] = entry["rps"] / base if base else None
    # Requests per CPU-second of the proxies, as a multiple of HAProxy's: what one core would carry if
    # each proxy had it to itself. It holds up when the shared machine takes part of CPU 1 away.
    peer_cost = out.get(PEER, {}).get("cpu_us_per_request")
    for entry in out.values():
        cost = entry["cpu_us_per_request"]
        entry["x_haproxy_per_cpu"] = peer_cost / cost if peer_cost and cost else None
    for arm, entry in out.items():
        floor = out.get(FLOOR_OF.get(arm, ""), {})
        floor_cost, cost = floor.get("cpu_us_per_request"), entry["cpu_us_per_request"]
        entry["x_floor"] = entry["rps"] / floor["rps"] if floor.get("rps") else None
        entry["x_floor_per_cpu"] = floor_cost / cost if floor_cost and cost else None
    return out


def _memory(results: dict[str, Any]) -> dict[str, Any]:
    """Per process: RSS idle, peak while the open-loop driver offered BUDGET_RATE, and after peak load."""
    out: dict[str, Any] = {}

    def entry(name: str) -> dict[str, Any]:
        found: dict[str, Any] = out.setdefault(
            name, {"idle_kib": None, "idle_pss_kib": None, "peak_kib_at_rate": None, "after_peak_kib": None}
        )
        return found

    for name, kib in results.get("idle_rss_kib", {}).items():
        entry(name)["idle_kib"] = kib
    for name, kib in results.get("idle_pss_kib", {}).items():
        entry(name)["idle_pss_kib"] = kib
    for run in results.get("latency_runs", []):
        if run["rate"] != BUDGET_RATE:
            continue
        for name, p in run["proxies"].items():
            e = entry(name)
            e["peak_kib_at_rate"] = max(e["peak_kib_at_rate"] or 0, p["rss_peak_kib"])
    for run in results.get("throughput_runs", []):
        for name, kib in run.get("proxy_rss_kib", {}).items():
            e = entry(name)
            e["after_peak_kib"] = max(e["after_peak_kib"] or 0, kib)
    return out


def _budgets(
    lat: dict[str, Any], tput: dict[str, Any], h2: dict[str, Any], mem: dict[str, Any], grpc: dict[str, Any]
) -> list[dict[str, Any]]:
    ours = {n: m for n, m in mem.items() if n.startswith(OURS_PREFIX)}
    two_hop = lat.get(rate_key(BUDGET_RATE), {}).get(TWO_HOP, {})
    measured: dict[str, float | None] = {
        "added_p50_2hop_ms": two_hop.get("added_p50", {}).get("median"),
        "added_p99_2hop_ms": two_hop.get("added_p99", {}).get("median"),
        "throughput_1hop_x_haproxy": tput.get(ONE_HOP, {}).get("x_haproxy"),
        "throughput_2hop_x_haproxy": tput.get(TWO_HOP, {}).get("x_haproxy"),
        "idle_rss_mib": max((m["idle_kib"] / MIB for m in ours.values() if m["idle_kib"]), default=None),
        "rate_rss_mib": max(
            (m["peak_kib_at_rate"] / MIB for m in ours.values() if m["peak_kib_at_rate"]), default=None
        ),
        "h2_2hop_x_haproxy": h2.get(TWO_HOP, {}).get("x_haproxy"),
        "grpc_2hop_x_direct": grpc.get(TWO_HOP, {}).get("x_direct"),
    }
    peer_two_hop = lat.get(rate_key(BUDGET_RATE), {}).get(PEER_TWO_HOP, {})
    peer = {"added_p50_2hop_ms": peer_two_hop.get("added_p50", {}).get("median"),
            "added_p99_2hop_ms": peer_two_hop.get("added_p99", {}).get("median"),
            "throughput_2hop_x_haproxy": tput.get(PEER_TWO_HOP, {}).get("x_haproxy"),
            "h2_2hop_x_haproxy": h2.get(PEER_TWO_HOP, {}).get("x_haproxy")}  # fmt: skip
    per_cpu = {"throughput_1hop_x_haproxy": tput.get(ONE_HOP, {}).get("x_haproxy_per_cpu"),
               "throughput_2hop_x_haproxy": tput.get(TWO_HOP, {}).get("x_haproxy_per_cpu"),
               "h2_2hop_x_haproxy": h2.get(TWO_HOP, {}).get("x_haproxy_per_cpu"),
               "grpc_2hop_x_direct": grpc.get(TWO_HOP, {}).get("x_direct_per_cpu")}  # fmt: skip
    rows = []
    for key, what, limit, kind in BUDGETS:
        value = measured[key]
        passed = None if value is None else (value <= limit if kind == "max" else value >= limit)
        rows.append({"key": key, "what": what, "limit": limit, "kind": kind, "measured": value, "pass": passed,
                     "per_cpu": per_cpu.get(key), "peer": peer.get(key)})  # fmt: skip
    return rows


def summarize_results(results: dict[str, Any]) -> dict[str, Any]:
    lat = _latency(results.get("latency_runs", []))
    tput = _throughput(results.get("throughput_runs", []))
    h2 = _throughput(results.get("h2_runs", []))
    mem = _memory(results)
    grpc = summarize_grpc(results.get("grpc_runs", []))
    budgets = _budgets(lat, tput, h2, mem, grpc)
    complete = (
        results.get("mesh_error") is None
        and results.get("floor_error") is None
        and not results.get("crashed")
        and all(e["valid_runs"] == e["runs"] for arms in lat.values() for e in arms.values())
        and all(e["errors"] == 0 for e in (*tput.values(), *h2.values(), *grpc.values()))
        and not results.get("grpc_crashed")
        and not results.get("grpc_error")
    )
    return {"latency": lat, "throughput": tput, "h2": h2, "grpc": grpc, "memory": mem, "budgets": budgets,
            "complete": complete}  # fmt: skip


# -- markdown ----------------------------------------------------------------------------------------
def _num(value: Any, fmt: str = ".3f") -> str:
    return "–" if value is None else format(value, fmt)


def _added(entry: dict[str, Any], key: str) -> str:
    spread = entry.get(key)
    if not spread:
        return "–"
    if spread["min"] == spread["max"]:
        return f"{spread['median']:+.3f}"
    return f"{spread['median']:+.3f} ({spread['min']:+.3f}…{spread['max']:+.3f})"


def _mib(kib: Any) -> str:
    return "–" if kib is None else f"{kib / MIB:.1f}"


def _latency_section(rate: str, arms: dict[str, Any], st: dict[str, Any]) -> list[str]:
    lines = [
        f"### {rate} rps (open loop, {st['connections']} connections, {st['duration']:g} s after "
        f"{st['warmup']:g} s warm-up, {st['rounds']} round(s))",
        "",
        "| arm | added p50 ms | added p99 ms | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| proxy CPU (cores) | CPU µs/req | driver lag p99 ms | valid (noisy) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, e in arms.items():
        lines.append(
            f"| {arm} | {_added(e, 'added_p50')} | {_added(e, 'added_p99')} | {_num(e.get('p50'))} "
            f"| {_num(e.get('p90'))} | {_num(e.get('p99'))} | {_num(e.get('p99.9'))} "
            f"| {_num(e.get('proxy_vcpu'), '.2f')} | {_num(e.get('cpu_us_per_request'), '.0f')} "
            f"| {_num(e.get('driver_lag_p99_ms'))} | {e['valid_runs']}/{e['runs']} ({e['noisy_runs']}) |"
        )
    problems = [f"{arm}: {', '.join(e['problems'])}" for arm, e in arms.items() if e["problems"]]
    if problems:
        lines += ["", "Invalid runs (left out; saturated, errors or driver lag): " + "; ".join(problems)]
    return lines + [""]


def _budget_table(budgets: list[dict[str, Any]]) -> list[str]:
    lines = ["| budget | limit | measured | | per CPU-s | two HAProxies, same shape |", "|---|---|---|---|---|---|"]
    for b in budgets:
        sign = "≤" if b["kind"] == "max" else "≥"
        value = "not measured" if b["measured"] is None else f"{b['measured']:.3f}"
        verdict = {True: "pass", False: "**FAIL**", None: "–"}[b["pass"]]
        lines.append(f"| {b['what']} | {sign} {b['limit']:g} | {value} | {verdict} | {_num(b.get('per_cpu'))} "
                     f"| {_num(b.get('peer'))} |")  # fmt: skip
    return lines


def _throughput_table(arms: dict[str, Any]) -> list[str]:
    floor = any(e.get("x_floor") is not None for e in arms.values())  # × floor columns only beside a floor arm
    lines = [
        "| arm | × HAProxy | × direct | × HAProxy per CPU-s | " + ("× floor | × floor per CPU-s | " if floor else "")
        + "req/s | proxy CPU (cores) | CPU µs/req | errors |",
        "|---|---|---|---|" + ("---|---|" if floor else "") + "---|---|---|---|",
    ]  # fmt: skip
    for arm, e in arms.items():
        vs_floor = f"| {_num(e['x_floor'], '.2f')} | {_num(e['x_floor_per_cpu'], '.2f')} " if floor else ""
        lines.append(
            f"| {arm} | {_num(e['x_haproxy'], '.2f')} | {_num(e['x_direct'], '.2f')} "
            f"| {_num(e['x_haproxy_per_cpu'], '.2f')} {vs_floor}| {e['rps']:.0f} "
            f"| {_num(e['proxy_cpu'], '.2f')} | {_num(e['cpu_us_per_request'], '.1f')} | {e['errors']} |"
        )
    return lines


FLOOR_NOTE = (
    "**The floor arms** run `bench.floor`, the least an HTTP/1.1 pass-through in Python can do: uvloop + "
    "httptools, one upstream connection per client connection, every byte forwarded unchanged, the parser "
    "fed only to find where messages end; no routing, header checks, metrics or limits (a measuring stick, "
    "not a proxy). floor-1hop has mesh-1hop's shape; floor-2hop-tls is two floors on the same core with TLS "
    "1.3 between them, client certificates from the mesh's issuer and the peer identity checked, as in "
    "mesh-2hop-mtls. They are measured in this phase only. **× floor** = our arm's requests/s over the floor "
    "arm of the same shape; *per CPU-s* compares CPU per request instead. Where a floor arm itself misses a "
    "throughput budget, the budget is out of reach for Python on this machine even with none of a proxy's "
    "work done; the split below shows where the floor's CPU goes and where ours does."
)


def render_markdown(results: dict[str, Any]) -> str:
    s, m, st = results["summary"], results["machine"], results["settings"]
    dirty = " (with uncommitted changes)" if results.get("dirty") else ""
    lines = [
        f"# Proxy benchmark — {results['date']}, commit {results['commit']}{dirty}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}, load average before the run "
        f"{m.get('loadavg', '?')}; {m['nginx']}; {m['haproxy'][:30]}; {m['wrk'][:30]}; {m.get('h2load', '?')}; "
        f"Python {m['python']}.  ",
        f"Command: `{results['command']}` ({results.get('wall_s', 0):.0f} s). "
        f"Raw results: `bench/results/{results.get('json_name', '?')}` on the machine that ran it (not committed).",
        "",
        "Arms: "
        + "; ".join(f"**{name}** = {a['description']}" for name, a in results.get("arms", {}).items())
        + ". Every arm serves the same 1 KiB body from the same nginx.",
        "",
        "## Budgets (DESIGN.md)",
        "",
        "Latency added over direct (same round) and throughput as a multiple of HAProxy's (same job); "
        "*per CPU-s* compares requests per CPU-second of the proxies instead of requests per second. "
        f"*Two HAProxies, same shape* is the `{PEER_TWO_HOP}` arm measured the same way: what a mature C proxy "
        "pays on this machine for the two-hop budgets' own topology (two proxies on one core, mTLS between).",
        "",
        *_budget_table(s["budgets"]),
        "",
        "## Latency added at a fixed rate",
        "",
        "Open-loop driver (`bench.openloop`), latency from each request's intended send time. "
        "**added** = arm − direct in the same round: the median over rounds, (min…max) when they differ. "
        "CPU µs/req = the proxies' CPU time over the requests they carried (both proxies for two hops). "
        "Noisy = valid runs whose driver was late at p99 (> 1 ms), after reruns: its lateness is charged "
        "to the arm, so their figures over-state, never under-state.",
        "",
    ]
    for rate, arms in s["latency"].items():
        lines += _latency_section(rate, arms, st)
    lines += [
        f"## Peak throughput on one core (`wrk -t1 -c{st['wrk_connections']} -d{st['wrk_seconds']}s`, "
        "median of the rounds)",
        "",
        "Proxies under test pinned to CPU 1 (both of ours share it in the two-hop arm); nginx, wrk, the "
        "driver and the control plane on CPU 0.",
        "",
    ]
    lines += _throughput_table(s["throughput"])
    lines += [
        "",
        "In the direct arm wrk and nginx share CPU 0. A proxy CPU well under 1.0 means something else was "
        "the bottleneck (CPU 0, or another process on CPU 1): its raw ratio is then a lower bound, and "
        "*× HAProxy per CPU-s* (requests per CPU-second of the proxies, relative to HAProxy's) is the "
        "steadier figure.",
        "",
    ]
    if any(name in s["throughput"] for name in FLOOR_OF.values()):
        lines += [FLOOR_NOTE, ""]
    elif results.get("floor_error"):
        lines += [f"The floor arms were not measured: {results['floor_error'].splitlines()[0]}", ""]
    lines += split_markdown(results.get("throughput_runs", []), results.get("cpu_split_skipped", ""))
    if s.get("h2"):
        lines += [
            f"## Peak HTTP/2 throughput (`h2load -c{st['h2_clients']} -m{st['h2_streams']} "
            f"-D {st['h2_seconds']}`, h2c prior knowledge, median of the rounds)",
            "",
            "Same pinning. nginx and HAProxy speak h2 to the client and HTTP/1.1 to nginx behind them; our "
            "proxies speak h2 to the client and what they choose behind it.",
            "",
            *_throughput_table(s["h2"]),
            *(f"\nLeft out: {arm}: {why}." for arm, why in results.get("h2_skipped", {}).items()),
        ]
    lines += ["", *grpc_markdown(s.get("grpc", {}), st, results.get("grpc_skipped", ""))]
    lines += [
        "## Memory (MiB)",
        "",
        "PSS counts each shared page (the interpreter's and the extension modules' code) divided among the "
        "processes that map it: what one more sidecar costs a host. The budgets are stated in RSS.",
        "",
        f"| process | idle | idle PSS | peak at {BUDGET_RATE:g} rps | after peak load |",
        "|---|---|---|---|---|",
    ]
    for name, e in s["memory"].items():
        lines.append(f"| {name} | {_mib(e['idle_kib'])} | {_mib(e['idle_pss_kib'])} "
                     f"| {_mib(e['peak_kib_at_rate'])} | {_mib(e['after_peak_kib'])} |")  # fmt: skip
    if results.get("mesh_error"):
        lines += ["", f"Our proxies were not measured: {results['mesh_error'].splitlines()[0]}"]
    if results.get("crashed") or results.get("grpc_crashed"):
        died = [*results.get("crashed", []), *results.get("grpc_crashed", [])]
        lines += ["", f"Processes that died during the run: {', '.join(died)}"]
    if not s["complete"]:
        lines += ["", "**This run is incomplete** (invalid runs, errors or a missing arm): read it with care."]
    return "\n".join(lines) + "\n"
