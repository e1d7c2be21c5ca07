"""Targeted runs of single mesh arms: throughput and latency as ratios to peers of the same run, and profiles.

    .venv/bin/python -m bench.profile --arm mesh-1hop                      # wrk: the arm vs HAProxy
    .venv/bin/python -m bench.profile --arm mesh-1hop --latency 1000       # + open loop vs direct/HAProxy
    .venv/bin/python -m bench.profile --arm mesh-2hop-mtls --profile 10    # + py-spy under wrk, summarised

The full job (bench.run) takes minutes and runs every arm; tuning the hot path needs one arm at a time,
always beside HAProxy (and direct, for latency) started in the same invocation, because the shared
machine's speed moves by tens of percent between minutes. Every figure comes with the load average at
the time. --profile samples each proxy of the arm with py-spy (pinned with the load tools, so it does
not take the proxies' core) while wrk drives the arm, and writes the top functions by self and by
cumulative samples to --out (bench/results/profile-h1[-2hop-mtls]-<commit>.txt).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procs import BenchError, Proc, Processes, cpu_seconds
from bench.run import RESULTS_DIR, _short_commit, drive, throughput
from bench.topology import LOAD_CPU, Arm, direct_arm, require_tools, start_haproxy, start_mesh, start_nginx
from bench.wrk import run_wrk

ARMS = ("mesh-1hop", "mesh-2hop-mtls")
TOP = 30


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _frame_key(frame: str) -> str:
    """`func (path/to/file.py:123)` → `func (file.py)`: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 2)[-1] if path else '?'})"


def summarize_collapsed(text: str, top: int = TOP) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """py-spy's raw (collapsed) stacks → (samples, top by self, top by cumulative)."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";")[1:]]  # the first element is the thread
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for key in set(frames):
            cumulative[key] += count
    return total, own.most_common(top), cumulative.most_common(top)


def render_profile(title: str, per_proc: dict[str, str], top: int = TOP) -> str:
    lines = [title, ""]
    for name, text in per_proc.items():
        total, own, cumulative = summarize_collapsed(text, top)
        lines.append(f"== {name}: {total} samples (on CPU) ==")
        for label, rows in (("self", own), ("cumulative", cumulative)):
            lines += ["", f"-- top {top} by {label} --", f"{'%':>6} {'samples':>8}  function (file)"]
            lines += [f"{100.0 * n / max(total, 1):6.1f} {n:8d}  {key}" for key, n in rows]
        lines.append("")
    return "\n".join(lines)


def _profile(procs: Processes, arm: Arm, args: argparse.Namespace, log: Any) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise BenchError("py-spy is not installed (.venv/bin/python -m pip install py-spy)")
    # Warm up first: connections (and their TLS handshakes) are made before sampling starts.
    run_wrk(procs, f"wrk-warmup-{arm.name}", arm.url, host_header=arm.host_header, seconds=2,
            connections=args.wrk_connections, cpu=LOAD_CPU)  # fmt: skip
    outs: dict[str, Path] = {}
    spies: list[Proc] = []
    for p in arm.proxies:
        outs[p.name] = procs.log_dir / f"pyspy-{p.name}.txt"
        argv = [spy, "record", "--pid", str(p.pid), "--format", "raw", "--rate", str(args.rate_hz),
                "--duration", str(args.profile), "--output", str(outs[p.name])]  # fmt: skip
        # Native unwinding needs the process stopped while a sample is taken.
        argv.append("--native" if args.native else "--nonblocking")
        spies.append(procs.start(f"pyspy-{p.name}", argv, cpu=LOAD_CPU))
    time.sleep(0.5)  # py-spy attaches before the load starts
    before = {p.name: cpu_seconds(p.pid) for p in arm.proxies}
    started = time.monotonic()
    wrk = run_wrk(procs, f"wrk-profile-{arm.name}", arm.url, host_header=arm.host_header, seconds=args.profile,
                  connections=args.wrk_connections, cpu=LOAD_CPU)  # fmt: skip
    wall = time.monotonic() - started
    cpu = sum(cpu_seconds(p.pid) - before[p.name] for p in arm.proxies)
    for spy_proc in spies:
        deadline = time.monotonic() + 30
        while spy_proc.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        procs.stop(spy_proc)
    commit, dirty = _short_commit()
    title = (
        f"py-spy ({'--native' if args.native else '--nonblocking'}, {args.rate_hz} Hz) of {arm.name} under "
        f"wrk -t1 -c{args.wrk_connections} -d{args.profile}s; commit {commit}{' (dirty)' if dirty else ''}; "
        f"load average {_load()}\nwhile sampled: {wrk.rps:.0f} req/s, {1e6 * cpu / max(wrk.requests, 1):.1f} "
        f"µs CPU/request (sampling slows the proxy: figures for ratios come from runs without it); wall {wall:.1f} s"
    )
    text = render_profile(title, {n: o.read_text() if o.exists() else "" for n, o in outs.items()})
    name = "h1" if arm.name == "mesh-1hop" else "h1-2hop-mtls"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"profile-{name}-{commit}.txt"
    path.write_text(text + "\n")
    log(f"profile: wrote {path}")
    return text


def _cpu_us(res: dict[str, Any]) -> float:
    cores = sum(float(c) for c in res["proxy_cpu"].values())
    return 1e6 * cores * float(res["seconds"]) / max(int(res["requests"]), 1)


def run(args: argparse.Namespace, log: Any) -> None:
    require_tools()
    tmp = Path(tempfile.mkdtemp(prefix="meshctl-profile-"))
    log(f"profile: temp dir {tmp}; load average {_load()}")
    with Processes(tmp) as procs:
        nginx, port, h2_port = start_nginx(procs, tmp)
        direct, haproxy = direct_arm(port, h2_port), start_haproxy(procs, tmp, port)
        mesh_arms, _ = start_mesh(procs, tmp, port)
        ours = [a for a in mesh_arms if a.name in args.arm]
        time.sleep(1.0)
        for rate in args.latency:
            for rnd in range(args.rounds):
                base: dict[str, float] = {}
                for arm in (direct, haproxy, *ours):
                    res = drive(procs, arm, rate, args, f"{rnd}-{rate:g}-{arm.name}")
                    lat, cores = res["latency_ms"], sum(p["vcpu"] for p in res["proxies"].values())
                    base.setdefault("p50", lat["p50"])
                    base.setdefault("p99", lat["p99"])
                    log(f"latency {rate:g} rps round {rnd + 1} {arm.name:15} p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} "
                        f"p99.9 {lat['p99.9']:.3f} ms  added p50 {lat['p50'] - base['p50']:+.3f} "
                        f"p99 {lat['p99'] - base['p99']:+.3f}  CPU {1e6 * cores / rate:.0f} µs/req  "
                        f"driver lag p99 {res['driver_lag_ms']['p99']:.3f}  "
                        f"{'valid' if res['valid'] else 'INVALID'}  load {_load()}")  # fmt: skip
        for rnd in range(args.rounds if args.wrk_seconds else 0):
            ha = throughput(procs, haproxy, args, f"{rnd}-haproxy")
            ha_us = _cpu_us(ha)
            log(f"wrk round {rnd + 1} haproxy         {ha['rps']:8.0f} req/s  {ha_us:6.1f} µs CPU/req  load {_load()}")
            for arm in ours:
                res = throughput(procs, arm, args, f"{rnd}-{arm.name}")
                us = _cpu_us(res)
                log(f"wrk round {rnd + 1} {arm.name:15} {res['rps']:8.0f} req/s  {us:6.1f} µs CPU/req  "
                    f"× HAProxy {res['rps'] / ha['rps']:.3f}  per CPU-s {ha_us / us:.3f}  errors {res['errors']}  "
                    f"load {_load()}")  # fmt: skip
        if args.profile:
            for arm in ours:
                print(_profile(procs, arm, args, log))
        if not nginx.alive():
            raise BenchError("nginx exited during the run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", action="append", choices=ARMS, help="mesh arm(s) to run (default: mesh-1hop)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each measurement, arms alternating")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="wrk seconds per throughput run, 0 to skip")
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--latency", type=float, action="append", default=[], help="open-loop rate (repeatable)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per latency run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16, help="open-loop connections")
    parser.add_argument("--profile", type=int, default=0, help="seconds of py-spy under wrk per arm (0: none)")
    parser.add_argument("--rate-hz", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where profile-*.txt goes")
    args = parser.parse_args(argv)
    args.arm = args.arm or ["mesh-1hop"]
    args.retries_left = 0  # bench.run.drive: no reruns, every figure is printed with the load average

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        run(args, log)
    except BenchError as exc:
        log(f"profile: {exc}")
        return 1
    except KeyboardInterrupt:
        log("profile: interrupted; every process it started has been stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
