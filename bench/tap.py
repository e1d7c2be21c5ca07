"""The tap benchmark: what a tapped proxy delivers to a client, and what tapping (or merely having tap)
costs the requests it carries.

    .venv/bin/python -m bench.tap            # the full job, about 4 minutes
    .venv/bin/python -m bench.tap --quick    # a smoke run, about 1 minute

Topology as bench.run's one-proxy arm: nginx (1 KiB body) ← our sidecar's outbound listener (plaintext),
the proxies pinned to CPU 1; nginx, the open-loop driver and the tap client on CPU 0. Two proxies run
side by side from the same ProxyConfig: `no-tap` (no tap listener: runtime.tap is None) and `tap`
(the tap listener on). Phase 1 offers rising rates through the tap proxy with one headless client
subscribed and counts what reached it; phase 2 alternates, at 1,000 rps, no-tap / tap with nobody
subscribed / tap with the client subscribed. Writes TAP.md and the raw JSON to --out and prints TAP.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.configs import DIRECT_SERVICE, ONE_HOP_POD, authority, proxy_config
from bench.procs import BenchError, Proc, Processes, cpu_seconds, free_port, http_ok, pss_kib, rss_kib, wait_for
from bench.run import _machine, _short_commit, drive  # one job's conventions, shared with bench.run
from bench.tap_counter import CLIENTS
from bench.tap_mesh import start_tapped_mesh
from bench.tap_report import render_markdown, summarize
from bench.topology import (
    LOAD_CPU,
    PROXY_CPU,
    REPO,
    START_TIMEOUT_S,
    Arm,
    plan_mesh,
    python_env,
    require_tools,
    start_nginx,
    write_mesh_files,
)

RESULTS_DIR = REPO / "bench" / "results"
DEFAULT_RAMP = [500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0]
SETTLE_QUIET_S = 2.5  # drop notices go out about once a second: two of them fit in this quiet spell
SETTLE_MAX_S = 30.0
EVENTS_PER_REQUEST = 3  # request_init, response_init, response_end (no bodies asked)


@dataclass
class TapProxies:
    """The two proxies and the arms reaching them."""

    plain: Proc  # no tap listener
    tapper: Proc  # tap listener on
    tap_address: str
    no_tap: Arm
    tap: Arm


def _sidecar_config(base: dict[str, Any], tap_port: int | None) -> dict[str, Any]:
    """The one-hop ProxyConfig on fresh ports, with or without the tap listener."""
    config: dict[str, Any] = json.loads(json.dumps(base))
    config["inbound"]["listen"] = f"127.0.0.1:{free_port()}"
    config["outbound"]["listen"] = f"127.0.0.1:{free_port()}"
    config["admin"]["listen"] = f"127.0.0.1:{free_port()}"  # bench.sidecar serves no admin endpoint
    if tap_port is not None:
        config["tap"] = {"listen": f"127.0.0.1:{tap_port}"}
    return config


def start_proxies(procs: Processes, tmp: Path, nginx_port: int) -> TapProxies:
    plan = plan_mesh(tmp, nginx_port)
    write_mesh_files(plan)  # identity material, token and the one-hop snapshot (nginx-direct → nginx)
    base = proxy_config(plan, ONE_HOP_POD)
    tap_port = free_port()
    started: dict[str, tuple[Proc, str]] = {}
    for name, port in (("no-tap", None), ("tap", tap_port)):
        config = _sidecar_config(base, port)
        path = tmp / "proxies" / f"{name}.json"
        path.write_text(json.dumps(config, indent=2))
        argv = [sys.executable, "-m", "bench.sidecar", "--config", str(path),
                "--identity-dir", str(plan.identity_dir), "--snapshot", str(tmp / "one-hop-snapshot.json")]  # fmt: skip
        proc = procs.start(f"sidecar-{name}", argv, cpu=PROXY_CPU, env=python_env())
        started[name] = (proc, f"http://127.0.0.1:{config['outbound']['listen'].rsplit(':', 1)[1]}/")
    host = authority(DIRECT_SERVICE)
    everyone = [p for p, _ in started.values()]
    for name, (_proc, url) in started.items():
        wait_for(f"a 200 through the {name} proxy", partial(http_ok, url, host), START_TIMEOUT_S, everyone)
    plain, plain_url = started["no-tap"]
    tapper, tap_url = started["tap"]
    return TapProxies(
        plain, tapper, f"127.0.0.1:{tap_port}",
        Arm("no-tap", "one proxy without a tap listener (runtime.tap is None)", plain_url, host, [plain]),
        Arm("tap", "one proxy with its tap listener", tap_url, host, [tapper]),
    )  # fmt: skip


class Subscription:
    """One headless tap client process (bench.tap_counter) and the counts it prints."""

    def __init__(self, procs: Processes, address: str, client: str, name: str) -> None:
        self.procs = procs
        self.out = procs.log_dir / f"{name}.jsonl"
        argv = [sys.executable, "-m", "bench.tap_counter", "--address", address, "--client", client,
                "--max-seconds", "1200"]  # fmt: skip
        self.proc = procs.start(name, argv, cpu=LOAD_CPU, env=python_env(), stdout=self.out)
        try:
            wait_for(f"{name} to subscribe to {address}", lambda: self.counts().get("state") == "streaming",
                     START_TIMEOUT_S, [self.proc])  # fmt: skip
        except BenchError as exc:
            reason = self.counts().get("reason")  # the client says why on its stdout
            raise BenchError(f"the tap client could not subscribe: {reason}" if reason else str(exc)) from None

    def counts(self) -> dict[str, Any]:
        """The client's last complete line of cumulative counts ({} before its first)."""
        try:
            lines = self.out.read_text().splitlines()
        except OSError:
            return {}
        for line in reversed(lines):
            try:
                parsed: dict[str, Any] = json.loads(line)
                return parsed
            except ValueError:
                continue  # a line being written
        return {}

    def settle(self, expected_events: int) -> dict[str, Any]:
        """Counts once everything expected arrived, or nothing moved for SETTLE_QUIET_S (drop notices
        included), bounded by SETTLE_MAX_S."""
        deadline = time.monotonic() + SETTLE_MAX_S
        last, since = self.counts(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            if not self.proc.alive():
                raise BenchError(f"the tap client exited:\n{self.proc.log_tail()}")
            now = self.counts()
            if now.get("events", 0) >= expected_events and now.get("events") == last.get("events"):
                return now
            if now != {**last, "t": now.get("t")}:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= SETTLE_QUIET_S:
                return now
        return self.counts()

    def stop(self) -> dict[str, Any]:
        self.procs.stop(self.proc)
        return self.counts()


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    keys = ("events", "request_init", "response_init", "response_end", "dropped", "queue_full", "rate_limited")
    return {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in keys}


def ramp(procs: Processes, px: TapProxies, args: argparse.Namespace, log: Any) -> list[dict[str, Any]]:
    """Rising rates through the tapped proxy; stops after the first rate that lost events or saturated."""
    sub = Subscription(procs, px.tap_address, args.client, "tap-client-ramp")
    step_args = argparse.Namespace(duration=args.ramp_seconds, warmup=args.ramp_warmup,
                                   connections=args.connections, retries_left=0)  # fmt: skip
    steps: list[dict[str, Any]] = []
    try:
        for rate in args.ramp:
            before = sub.counts()
            client_cpu = cpu_seconds(sub.proc.pid)
            log(f"bench.tap: ramp {rate:g} rps ({EVENTS_PER_REQUEST * rate:g} events/s offered to the client)")
            res = drive(procs, px.tap, rate, step_args, f"ramp-{rate:g}")
            sent = res["warmup_requests"] + res["requests"] if res["error_count"] == 0 else res["ok"]
            expected = EVENTS_PER_REQUEST * sent
            after = sub.settle(expected)
            got = _delta(after, before)
            span = sent / res["achieved_rps"] if res["achieved_rps"] > 0 else 0.0
            step = {
                "rate": rate, "achieved_rps": res["achieved_rps"], "valid": res["valid"],
                "problems": res["problems"], "warnings": res["warnings"], "requests": sent,
                "expected_events": expected, **got,
                "events_per_s": got["events"] / span if span else 0.0,
                "client_cpu_s": cpu_seconds(sub.proc.pid) - client_cpu,
                "latency_ms": res["latency_ms"], "proxy": res["proxies"][px.tapper.name],
            }  # fmt: skip
            step["clean"] = bool(step["valid"] and got["events"] == expected and not got["queue_full"]
                                 and not got["rate_limited"])  # fmt: skip
            steps.append(step)
            problems = "" if res["valid"] else " — " + "; ".join(res["problems"])
            log(f"       {got['events']}/{expected} events ({step['events_per_s']:.0f}/s), "
                f"{got['queue_full']} requests dropped (queue full), {got['rate_limited']} rate-limited, "
                f"achieved {res['achieved_rps']:.0f} rps{problems}")  # fmt: skip
            if not step["clean"]:
                break
    finally:
        sub.stop()
    return steps


def latency_rounds(procs: Processes, px: TapProxies, args: argparse.Namespace, log: Any) -> list[dict[str, Any]]:
    """no-tap / untapped / tapped at one rate, the order reversed every other round."""
    runs: list[dict[str, Any]] = []
    arms = ["no-tap", "untapped", "tapped"]
    for rnd in range(args.rounds):
        for name in arms if rnd % 2 == 0 else arms[::-1]:
            arm = px.no_tap if name == "no-tap" else px.tap
            log(f"bench.tap: latency round {rnd + 1}/{args.rounds}: {name} at {args.rate:g} rps")
            sub = Subscription(procs, px.tap_address, args.client, f"tap-client-{rnd}") if name == "tapped" else None
            counts: dict[str, Any] = {}
            client_cpu, started = (cpu_seconds(sub.proc.pid) if sub else 0.0), time.monotonic()
            try:
                res = drive(procs, arm, args.rate, args, f"{rnd}-{name}")
                if sub is not None:  # the client shares CPU 0 with the driver: how much of it it took
                    res["tap_client_vcpu"] = (cpu_seconds(sub.proc.pid) - client_cpu) / (time.monotonic() - started)
                if sub is not None:  # what reached the client (reruns of a late driver add to it)
                    counts = sub.settle(EVENTS_PER_REQUEST * (res["warmup_requests"] + res["requests"]))
            finally:
                if sub is not None:
                    counts = sub.stop() or counts
            res.update({"round": rnd, "rate": args.rate, "arm": name, "tap_client": counts})
            runs.append(res)
            lat = res["latency_ms"]
            log(f"       p50 {lat['p50']:.3f} ms  p99 {lat['p99']:.3f} ms  "
                + ("valid" if res["valid"] else "; ".join(res["problems"]))
                + "".join(f"; {w}" for w in res["warnings"])
                + (f"; client got {counts.get('events', 0)} events, {counts.get('queue_full', 0)} requests dropped"
                   if sub is not None else ""))  # fmt: skip
    return runs


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    require_tools()
    tmp = Path(tempfile.mkdtemp(prefix="meshctl-bench-tap-"))
    log(f"bench.tap: temp dir {tmp} (configs and logs)")
    out: dict[str, Any] = {"tmp_dir": str(tmp)}
    with Processes(tmp) as procs:
        nginx, nginx_port, _ = start_nginx(procs, tmp)
        px = start_proxies(procs, tmp, nginx_port)
        time.sleep(1.0)  # settle before measuring idle memory
        out["idle_rss_kib"] = {p.name: rss_kib(p.pid) for p in (px.plain, px.tapper)}
        out["idle_pss_kib"] = {p.name: pss_kib(p.pid) for p in (px.plain, px.tapper)}
        out["proxies"] = {"no-tap": px.plain.name, "tap": px.tapper.name}
        out["latency_runs"] = latency_rounds(procs, px, args, log)
        out["ramp"] = ramp(procs, px, args, log) if args.ramp else []
        out["after_rss_kib"] = {p.name: rss_kib(p.pid) for p in (px.plain, px.tapper)}
        out["crashed"] = [p.name for p in (nginx, px.plain, px.tapper) if not p.alive()]
        if not args.no_mesh:
            out["mesh"] = real_proxy_memory(procs, tmp / "mesh", nginx_port, args, log)
            if not out["mesh"]["alive"]:
                out["crashed"].append(out["mesh"]["proxy"])
    return out


def real_proxy_memory(procs: Processes, tmp: Path, nginx_port: int, args: argparse.Namespace,
                      log: Any) -> dict[str, Any]:  # fmt: skip
    """RSS of `python -m meshctl.proxy` (control client and all) idle, then tapped at the latency rate."""
    log(f"bench.tap: memory of the real entry point: two hops, the client side tapped, {args.rate:g} rps")
    for proc in [p for p in procs.procs if p.name.startswith("sidecar-")]:
        procs.stop(proc)  # CPU 1 is theirs no longer
    mesh = start_tapped_mesh(procs, tmp, nginx_port)
    time.sleep(1.0)
    entry: dict[str, Any] = {"proxy": mesh.client.name, "idle_rss_kib": rss_kib(mesh.client.pid),
                             "idle_pss_kib": pss_kib(mesh.client.pid)}  # fmt: skip
    sub = Subscription(procs, mesh.tap_address, args.client, "tap-client-mesh")
    try:
        res = drive(procs, mesh.arm, args.rate, argparse.Namespace(**{**vars(args), "retries_left": 0}), "mesh")
        entry["tap_client"] = sub.settle(EVENTS_PER_REQUEST * (res["warmup_requests"] + res["requests"]))
    finally:
        sub.stop()
    entry.update({"rss_peak_kib": res["proxies"][mesh.client.name]["rss_peak_kib"], "valid": res["valid"],
                  "problems": res["problems"], "achieved_rps": res["achieved_rps"], "latency_ms": res["latency_ms"],
                  "pss_after_kib": pss_kib(mesh.client.pid), "alive": mesh.client.alive()})  # fmt: skip
    log(f"       RSS idle {entry['idle_rss_kib'] / 1024:.1f} MiB, peak tapped {entry['rss_peak_kib'] / 1024:.1f} MiB; "
        f"client got {entry['tap_client'].get('events', 0)} events")  # fmt: skip
    return entry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tap", description=__doc__.split("\n\n")[0])
    ramp_default = ", ".join(f"{r:g}" for r in DEFAULT_RAMP)
    parser.add_argument("--ramp", type=float, action="append",
                        help=f"ramp rate in requests/s, repeatable (default {ramp_default})")  # fmt: skip
    parser.add_argument("--ramp-seconds", type=float, default=4.0, help="measured seconds per ramp rate")
    parser.add_argument("--ramp-warmup", type=float, default=1.0, help="warm-up seconds per ramp rate")
    parser.add_argument("--rate", type=float, default=1000.0, help="rate of the latency rounds, requests/s")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per latency run")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each latency run")
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds (each: no-tap, untapped, tapped)")
    parser.add_argument("--connections", type=int, default=16, help="open-loop keep-alive connections")
    parser.add_argument("--retries", type=int, default=4, help="reruns of latency runs whose driver was late")
    parser.add_argument("--client", choices=CLIENTS, default="raw",
                        help="tap client: a minimal counting grpcio client (raw), the same contract on bare "
                             "python-h2 (h2), or the CLI's FanIn (fanin)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs, a 2 s ramp to 4,000 rps")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON and TAP.md")
    parser.add_argument("--no-mesh", action="store_true",
                        help="skip the memory run of the real entry point (control plane + two proxies)")  # fmt: skip
    parser.add_argument("--render", type=Path, metavar="JSON", help="only write TAP.md again from a run's raw JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.retries = 1, 3.0, 1.0, 0
        args.ramp_seconds, args.ramp_warmup = 2.0, 0.5
        args.ramp = args.ramp or [1000.0, 2000.0, 4000.0]
    args.ramp = args.ramp or list(DEFAULT_RAMP)
    if args.rounds < 1 or args.duration <= 0 or args.ramp_seconds <= 0 or args.retries < 0 or args.rate <= 0:
        parser.error("rounds, durations and the rate must be positive, retries not negative")
    if len(args.ramp) > 12 or any(not 0 < r <= 20_000 for r in args.ramp):
        parser.error("at most 12 ramp rates, each in (0, 20000] requests/s")
    args.ramp = sorted(args.ramp)
    args.retries_left = args.retries
    return args


def render_again(path: Path, out: Path, log: Any) -> int:
    """TAP.md from a stored run (the report changed, the measurements did not)."""
    try:
        results: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log(f"bench.tap: cannot read {path}: {exc} (hint: pass a tap-*.json written by bench.tap)")
        return 2
    results["summary"] = summarize(results)
    markdown = render_markdown(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "TAP.md").write_text(markdown)
    log(f"bench.tap: wrote {out / 'TAP.md'} from {path}")
    print(markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.render is not None:
        return render_again(args.render, args.out, log)

    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    commit, dirty = _short_commit()
    machine = _machine()  # before the run: the load average says how busy the machine was already
    try:
        raw = run(args, log)
    except BenchError as exc:
        log(f"bench.tap: {exc}")
        return 1
    except (ImportError, OSError, ValueError) as exc:  # a missing module or tool, a port, a config: one line
        log(f"bench.tap: {exc.__class__.__name__}: {exc} (hint: run `bash .ci/setup`; the logs are in the temp dir)")
        return 1
    except KeyboardInterrupt:
        log("bench.tap: interrupted; every process it started has been stopped")
        return 130
    machine["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    json_name = f"tap-{started:%Y-%m-%dT%H%M%S}-{commit}.json"
    results = {
        "schema": 1, "date": started.isoformat(timespec="seconds"), "commit": commit, "dirty": dirty,
        "command": shlex.join(["python", "-m", "bench.tap", *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": time.monotonic() - clock, "json_name": json_name, "machine": machine,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, **raw,
    }  # fmt: skip
    results["summary"] = summarize(results)
    markdown = render_markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / json_name).write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "TAP.md").write_text(markdown)
    log(f"bench.tap: wrote {args.out / json_name} and {args.out / 'TAP.md'}")
    print(markdown)
    return 0 if results["summary"]["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
