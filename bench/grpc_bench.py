"""bench.run's gRPC section: unary calls with 64 in flight, straight to the server and through our proxies.

| arm | path of a call |
|---|---|
| `direct` | bench.grpc_load → bench.grpc_service |
| `mesh-2hop-mtls` | grpc_load → client sidecar (outbound) → mTLS → ratings sidecar (inbound) → grpc_service |

The server speaks the demo's Ratings contract and is registered in the bench mesh as the `ratings`
service (protocol grpc), whose one endpoint is its own sidecar's mTLS inbound; the client sidecar is the
one the HTTP two-hop arm goes through. Pinning as in the other throughput sections: proxies on CPU 1,
the server and the load generator on CPU 0. An arm is a name, a target and the proxies on the way, so a
variant of the mesh (another codec, another pair of proxies) is one more `mesh_arm(...)` in the list.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.configs import CLIENT_POD, GRPC_POD, GRPC_SERVICE, GRPC_SERVICE_PORT, authority
from bench.procs import BenchError, Proc, Processes, http_ok, port_open, wait_for
from bench.topology import LOAD_CPU, PROXY_CPU, START_TIMEOUT_S, python_env

BASELINE = "direct"
SERVER = "grpc-server"


@dataclass
class GrpcArm:
    """One way of reaching the gRPC server: the address dialled, the :authority, the proxies on the way."""

    name: str
    description: str
    target: str
    authority: str
    proxies: list[Proc] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grpc-seconds", type=float, help="gRPC load per arm and round, 0 to skip (default 5, quick 2)"
    )
    parser.add_argument("--grpc-warmup", type=float, default=1.0, help="gRPC warm-up seconds per run")
    parser.add_argument("--grpc-in-flight", type=int, default=64, help="gRPC unary calls kept in flight")


def _proxy_config(tmp: Path, pod: str) -> tuple[Path, dict[str, Any]]:
    """The ProxyConfig write_mesh_files left for `pod`, and its path."""
    path = tmp / "proxies" / f"{pod}.json"
    try:
        return path, json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"no usable proxy config for {pod} at {path}: {exc}") from exc


def start_sidecar(procs: Processes, pod: str, config: Path, admin: str, watch: list[Proc]) -> Proc:
    """`python -m meshctl.proxy` for `pod` on the proxies' core, once it reports ready."""
    proc = procs.start(f"proxy-{pod}", [sys.executable, "-m", "meshctl.proxy", "--config", str(config)],
                       cpu=PROXY_CPU, env=python_env())  # fmt: skip
    ready = f"http://{admin}/ready"
    wait_for(f"{pod} to be ready ({ready})", partial(http_ok, ready), START_TIMEOUT_S, [*watch, proc])
    return proc


def mesh_arm(name: str, description: str, client: Proc, outbound: str, server_sidecar: Proc) -> GrpcArm:
    return GrpcArm(name, description, outbound, authority(GRPC_SERVICE, GRPC_SERVICE_PORT), [client, server_sidecar])


def start_grpc(procs: Processes, tmp: Path, mesh_procs: dict[str, Proc]) -> tuple[Proc, list[GrpcArm]]:
    """The gRPC server, its sidecar and the arms reaching it; mesh_procs as start_mesh returned them.

    Started after the HTTP sections, so that an idle extra proxy does not share their core.
    """
    sidecar_config, server_side = _proxy_config(tmp, GRPC_POD)
    app = server_side["inbound"]["app"]
    server = procs.start(SERVER, [sys.executable, "-m", "bench.grpc_service", "--listen", app], cpu=LOAD_CPU,
                         env=python_env())  # fmt: skip
    host, port = app.rsplit(":", 1)
    wait_for("the gRPC server to listen", partial(port_open, host, int(port)), START_TIMEOUT_S, [server])
    mesh = [mesh_procs["control"], mesh_procs[CLIENT_POD]]
    sidecar = start_sidecar(procs, GRPC_POD, sidecar_config, server_side["admin"]["listen"], [server, *mesh])
    outbound = _proxy_config(tmp, CLIENT_POD)[1]["outbound"]["listen"]
    arms = [
        GrpcArm(BASELINE, "straight to the gRPC server", app, authority(GRPC_SERVICE, GRPC_SERVICE_PORT)),
        mesh_arm("mesh-2hop-mtls", "two proxies: client sidecar → mTLS → ratings sidecar → gRPC server",
                 mesh_procs[CLIENT_POD], outbound, sidecar),
    ]  # fmt: skip
    for arm in arms:
        probe = partial(_answers, procs, arm, server)
        wait_for(f"an OK gRPC call through {arm.name}", probe, START_TIMEOUT_S, [server, sidecar, *mesh])
    return server, arms


def _load(procs: Processes, arm: GrpcArm, server: Proc, tag: str, *, in_flight: int, warmup: float,
          seconds: float) -> dict[str, Any]:  # fmt: skip
    """One bench.grpc_load run against `arm` on the load core; its JSON result."""
    out = procs.log_dir / f"grpc-load-{tag}.json"
    argv = [
        sys.executable, "-m", "bench.grpc_load", "--target", arm.target, "--authority", arm.authority,
        "--in-flight", str(in_flight), "--warmup", str(warmup), "--duration", str(seconds),
        *(f"--watch={p.name}={p.pid}" for p in (*arm.proxies, server)),
    ]  # fmt: skip
    out.unlink(missing_ok=True)
    proc = procs.start(f"grpc-load-{tag}", argv, cpu=LOAD_CPU, env=python_env(), stdout=out)
    bound = warmup + seconds + 60
    try:
        proc.popen.wait(timeout=bound)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the gRPC load through {arm.name} did not finish within {bound:g} s") from exc
    finally:
        procs.stop(proc)
    try:
        result: dict[str, Any] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"the gRPC load generator wrote no result for {arm.name}:\n{proc.log_tail()}") from exc
    return result


def _answers(procs: Processes, arm: GrpcArm, server: Proc) -> bool:
    """A short, single-call-in-flight run through `arm` completes calls without an error."""
    try:
        res = _load(procs, arm, server, f"probe-{arm.name}", in_flight=1, warmup=0.0, seconds=0.3)
    except BenchError:
        return False
    return bool(res["calls"] > 0 and res["errors"] == 0)


def grpc_runs(procs: Processes, server: Proc, arms: list[GrpcArm], args: argparse.Namespace,
              log: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    """Every arm once per round, arms alternating; calls/s, latency, statuses and CPU of each run."""
    runs: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for arm in arms:
            log(f"bench: gRPC round {rnd + 1}/{args.rounds}: {arm.name} (unary, {args.grpc_in_flight} in flight, "
                f"{args.grpc_seconds:g} s after {args.grpc_warmup:g} s warm-up)")  # fmt: skip
            res = _load(procs, arm, server, f"{rnd}-{arm.name}", in_flight=args.grpc_in_flight,
                        warmup=args.grpc_warmup, seconds=args.grpc_seconds)  # fmt: skip
            cpu = res.pop("cpu")
            res["proxy_cpu"] = {p.name: cpu[p.name] for p in arm.proxies}
            res["server_cpu"] = cpu[server.name]
            runs.append({"round": rnd, "arm": arm.name, **res})
            lat = res["latency_ms"]
            log(f"       {res['calls_per_s']:.0f} calls/s, p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                f"{res['errors']} errors" + "".join(f"; {c} {n}" for c, n in res["errors_by_status"].items()))
    return runs


def grpc_section(procs: Processes, tmp: Path, mesh_procs: dict[str, Proc], args: argparse.Namespace,
                 log: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """What bench.run stores of the section: the arms and their runs (the server is stopped afterwards)."""
    log("bench: gRPC: starting the server and its sidecar")
    server, arms = start_grpc(procs, tmp, mesh_procs)
    runs = grpc_runs(procs, server, arms, args, log)
    crashed = [p.name for p in (server, *(p for a in arms for p in a.proxies)) if not p.alive()]
    return {
        "grpc_arms": {a.name: {"description": a.description, "target": a.target, "authority": a.authority,
                               "proxies": [p.name for p in a.proxies]} for a in arms},
        "grpc_runs": runs,
        "grpc_crashed": sorted(set(crashed)),
    }  # fmt: skip
