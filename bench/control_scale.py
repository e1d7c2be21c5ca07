"""How the control plane's cost grows with the mesh: `python -m bench.control_scale [--sizes 10,100,1000]`.

Per size N: the real control plane (`python -m meshctl.control`, CPU 1) serves a mesh of N pods (services
of 10 endpoints, one token and identity per service account) to N simulated proxies
(bench.control_scale_clients, CPU 0: one TLS connection and Watch stream each, as real proxies have).
Measured: endpoint changes (a rewrite of control.json) until every proxy has the new snapshot; a burst
of Certify calls with CSRs made beforehand; the control plane's CPU per phase and its RSS before and
after the proxies connect. `--delivery` says how changes reach the proxies: as deltas (what proxies
ask for) and/or as complete snapshots (what an old proxy gets); each is a run of its own per size.
The same CSRs are signed by `openssl ca` in one process as a baseline.
Prints a markdown table and writes control-scale-<date>-<commit>.json and CONTROL_SCALE.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import queue
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.control_scale_report import published_times, render_markdown
from bench.procs import BenchError, Proc, Processes, cpu_seconds, free_port, http_ok, pss_kib, rss_kib, wait_for
from bench.run import RESULTS_DIR, _machine, _short_commit

PODS_PER_SERVICE = 10
NAMESPACE = "scale"
START_TIMEOUT_S = 30.0
CHANGE_TIMEOUT_S = 30.0  # a change must reach every proxy within this, or the size is reported incomplete
SETTLE_S = 2.0


def pod_identity(index: int) -> tuple[str, str]:
    """(pod name, identity) of the mesh's index-th pod: pods of a service share its service account."""
    from meshctl.identity import workload_identity

    service = f"svc-{index // PODS_PER_SERVICE}"
    return f"{service}-{index % PODS_PER_SERVICE}", workload_identity(service, NAMESPACE)


def control_document(n: int, listen: str, admin: str, ready_flip: int | None) -> dict[str, Any]:
    """control.json for a mesh of n pods; `ready_flip` marks one endpoint not ready (the change)."""
    from meshctl.control.config import hash_token

    services: dict[str, dict[str, Any]] = {}
    tokens = {}
    for i in range(n):
        pod, identity = pod_identity(i)
        name = pod.rsplit("-", 1)[0]
        service = services.setdefault(name, {"name": name, "namespace": NAMESPACE, "port": 8080,
                                             "protocol": "http", "endpoints": []})  # fmt: skip
        service["endpoints"].append({
            "address": f"127.{100 + i // 65536}.{i // 256 % 256}.{i % 256}", "port": 4143, "pod": pod,
            "identity": identity, "ready": i != ready_flip, "labels": {"app": name, "pod-template-hash": "5d8f7c"},
        })  # fmt: skip
        tokens[pod] = {"token_sha256": hash_token(f"token-{pod}"), "identity": identity}
    return {"listen": listen, "admin": admin, "identity_dir": "identity", "config_dir": "config",
            "tokens": tokens, "services": list(services.values()), "log_level": "info"}  # fmt: skip


def make_csrs(n: int) -> list[bytes]:
    """One CSR (DER) per pod, made before anything is timed."""
    from meshctl.pki.keys import make_csr, new_key

    return [make_csr(pod_identity(i)[1], new_key()) for i in range(n)]


def write_json(path: Path, document: Any) -> None:
    """Replace the file atomically: the control plane's poller sees the old or the new content, never half."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


class Clients:
    """The simulated-proxy process: commands on its stdin, events from its stdout (read by a thread)."""

    def __init__(self, procs: Processes, spec: Path, cpu: int | None) -> None:
        log = procs.log_dir / f"clients-{spec.stem}.log"
        cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + [
            sys.executable, "-m", "bench.control_scale_clients", "--spec", str(spec)]  # fmt: skip
        with log.open("ab") as err:
            popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                     start_new_session=True)  # fmt: skip
        self.proc = Proc(f"clients-{spec.stem}", popen, log)
        procs.procs.append(self.proc)
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.popen.stdout is not None
        for line in self.proc.popen.stdout:
            self._events.put(json.loads(line))
        self._events.put(None)

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.popen.stdin is not None
        self.proc.popen.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.popen.stdin.flush()

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        """The next event of that kind; BenchError on the clients' error, their exit or the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                got = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"the simulated proxies sent no {event!r} within {timeout_s:g} s") from None
            if got is None:
                raise BenchError(f"the simulated proxies exited; last lines of {self.proc.log}:\n"
                                 f"{self.proc.log_tail()}")  # fmt: skip
            if got["event"] == "error":
                raise BenchError(f"the simulated proxies failed: {got['error']}")
            if got["event"] == event:
                return got


def measure_size(procs: Processes, tmp: Path, n: int, csrs: list[bytes], args: argparse.Namespace,
                 log: Any, delivery: str = "delta", certs: int = 0) -> dict[str, Any]:  # fmt: skip
    from meshctl.control.ca import ensure_identity_material
    from meshctl.control.config import parse_control_config
    from meshctl.control.store import MeshStore
    from meshctl.identity import control_plane_identity

    home = tmp / f"n{n}-{delivery}"
    (home / "config").mkdir(parents=True)
    ensure_identity_material(home / "identity")
    listen, admin_port = f"127.0.0.1:{free_port()}", free_port()
    control_json = home / "control.json"
    write_json(control_json, control_document(n, listen, f"127.0.0.1:{admin_port}", None))
    spec = home / f"proxies-{n}.json"
    write_json(spec, {"address": listen, "server_identity": control_plane_identity(), "delta": delivery == "delta",
                      "anchors": str(home / "identity" / "ca.pem"),
                      "proxies": [{"pod": pod, "identity": identity, "token": f"token-{pod}",
                                   "csr_der": base64.b64encode(csrs[i]).decode()}
                                  for i, (pod, identity) in enumerate(map(pod_identity, range(n)))]})  # fmt: skip
    # The snapshot's size as the proxies receive it, from the control plane's own store code.
    store = MeshStore(None, parse_control_config(json.loads(control_json.read_text()), base=home))
    size: dict[str, Any] = {"proxies": n, "delivery": delivery, "services": len(store.snapshot.services),
                            "snapshot_bytes": len(store.snapshot_wire), "cpu_s": {}, "rss_kib": {},
                            "pss_kib": {}, "changes": []}  # fmt: skip
    control = procs.start(f"control-{n}", [sys.executable, "-m", "meshctl.control", "--config", str(control_json)],
                          cpu=args.control_cpu)  # fmt: skip
    wait_for("the control plane to be ready", lambda: http_ok(f"http://127.0.0.1:{admin_port}/ready"),
             START_TIMEOUT_S, [control])  # fmt: skip

    def sample(phase: str) -> None:
        size["rss_kib"][phase], size["pss_kib"][phase] = rss_kib(control.pid), pss_kib(control.pid)

    time.sleep(SETTLE_S)
    sample("before")
    try:
        cpu0 = cpu_seconds(control.pid)
        clients = Clients(procs, spec, args.clients_cpu)
        size["connect_s"] = clients.expect("connected", START_TIMEOUT_S + n * 0.05)["seconds"]
        clients.expect("ready", START_TIMEOUT_S)
        size["cpu_s"]["connect"] = cpu_seconds(control.pid) - cpu0
        log(f"control-scale: {n} proxies ({delivery}) connected in {size['connect_s']:.1f} s; "
            "every one has its snapshot")
        time.sleep(SETTLE_S)
        sample("connected")
        if args.idle > 0:
            cpu0 = cpu_seconds(control.pid)
            time.sleep(args.idle)
            size["cpu_s"]["idle"], size["cpu_s"]["idle_seconds"] = cpu_seconds(control.pid) - cpu0, args.idle
        size["cpu_s"]["changes"] = size["cpu_s"]["clients_changes"] = 0.0
        for k in range(args.changes):
            flip = None if k % 2 else (k * 7) % n  # alternately one endpoint not ready, all ready again
            cpu0, ccpu0, written = cpu_seconds(control.pid), cpu_seconds(clients.proc.pid), time.time()
            write_json(control_json, control_document(n, listen, f"127.0.0.1:{admin_port}", flip))
            event = clients.expect("version", CHANGE_TIMEOUT_S)
            size["cpu_s"]["changes"] += cpu_seconds(control.pid) - cpu0  # parse, rebuild, fan-out (and the poll)
            size["cpu_s"]["clients_changes"] += cpu_seconds(clients.proc.pid) - ccpu0  # is CPU 0 the bound?
            size["changes"].append({"version": event["version"], "written": written, "times": event["times"],
                                    "bytes": event.get("bytes")})  # fmt: skip
            last = max(event["times"])
            log(f"control-scale: {n} proxies ({delivery}), change {k + 1}/{args.changes}: last proxy "
                f"{1000 * (last - written):.0f} ms after the write")  # fmt: skip
            time.sleep(args.pause)
        sample("after_changes")
        if certs > 0:
            cpu0 = cpu_seconds(control.pid)
            clients.send({"cmd": "certify", "count": certs, "in_flight": args.in_flight})
            size["certify"] = clients.expect("certified", 120.0)
            size["cpu_s"]["certify"] = cpu_seconds(control.pid) - cpu0
            log(f"control-scale: {n} proxies: {certs} certificates in {size['certify']['seconds']:.2f} s, "
                f"{size['certify']['errors']} errors")  # fmt: skip
        clients.send({"cmd": "quit"})
    except BenchError as exc:
        size["error"] = str(exc)
        log(f"control-scale: {n} proxies: {exc}")
    finally:
        procs.stop_all()
    published = published_times(control.log.read_text(errors="replace"))
    for change in size["changes"]:
        change["published"] = published.get(change["version"])
    return size


OPENSSL_CNF = """[ ca ]
default_ca = scale
[ scale ]
database = {dir}/index.txt
new_certs_dir = {dir}/certs
serial = {dir}/serial
certificate = {issuer}/issuer.pem
private_key = {issuer}/issuer.key.pem
default_md = sha256
default_days = 1
policy = any
unique_subject = no
copy_extensions = copy
x509_extensions = leaf
[ any ]
commonName = optional
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl_baseline(tmp: Path, csrs: list[bytes], count: int, cpu: int | None) -> dict[str, Any]:
    """`openssl ca` signing `count` of the same CSRs (cycled) in one process, on the control plane's core."""
    from meshctl.control.ca import ensure_identity_material

    work = tmp / "openssl"
    (work / "certs").mkdir(parents=True)
    ensure_identity_material(work / "identity")
    (work / "index.txt").write_text("")
    (work / "serial").write_text("1000\n")
    (work / "ca.cnf").write_text(OPENSSL_CNF.format(dir=work, issuer=work / "identity"))
    files = []
    for i, der in enumerate(csrs[: min(len(csrs), count)]):
        body = base64.encodebytes(der).decode()
        path = work / f"csr-{i}.pem"
        path.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n")
        files.append(str(path))
    infiles = [files[i % len(files)] for i in range(count)]
    cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + [
        "openssl", "ca", "-batch", "-notext", "-config", str(work / "ca.cnf"), "-out", str(work / "out.pem"),
        "-infiles", *infiles]  # fmt: skip
    start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{exc.__class__.__name__}: {exc}"}
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # taskset execs openssl: its CPU is the child's
    cpu_s = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if done.returncode != 0:
        return {"error": f"openssl ca exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}"}
    signed = len(list((work / "certs").glob("*.pem")))  # -out keeps only the last one
    if signed != count:
        return {"error": f"openssl ca signed {signed} of {count} CSRs"}
    return {"count": count, "seconds": seconds, "cpu_s": cpu_s}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.control_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, help="mesh sizes (default 10,100,1000; quick: 10,100)")
    parser.add_argument("--changes", type=int, default=7, help="endpoint changes per size (≥ 5 for a p99)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between changes")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampling per size (0 skips)")
    parser.add_argument("--certs", type=int, default=500, help="Certify calls per size (0 skips)")
    parser.add_argument("--in-flight", type=int, default=32, help="Certify calls in flight at once")
    parser.add_argument("--delivery", type=parse_delivery, default=["full", "delta"],
                        help="how changes reach the proxies: full,delta (default: each a run per size), "
                             "delta or full")
    parser.add_argument("--quick", action="store_true", help="sizes 10,100; 5 changes; no idle sampling; 200 certs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON and CONTROL_SCALE.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or [10, 100]
        args.changes, args.idle, args.certs = 5, 0.0, 200
    args.sizes = args.sizes or [10, 100, 1000]
    if args.changes < 1 or args.certs < 0 or args.in_flight < 1 or args.idle < 0 or args.pause < 0:
        parser.error("changes and in-flight must be positive; certs, idle and pause not negative")
    if max(args.sizes) > 5000:
        parser.error("at most 5,000 proxies: one client process on one core")
    two_cores = (os.cpu_count() or 1) >= 2
    args.control_cpu, args.clients_cpu = (1, 0) if two_cores else (None, None)
    return args


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 10,100,1000, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse_delivery(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    if not modes or any(m not in ("full", "delta") for m in modes):
        raise argparse.ArgumentTypeError(f"expected delta, full or full,delta, got {text!r}")
    return sorted(set(modes), key=modes.index)


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="meshctl-control-scale-"))
    log(f"control-scale: temp dir {tmp} (configs and logs)")
    csrs = make_csrs(max(args.sizes))
    results: dict[str, Any] = {"tmp_dir": str(tmp), "sizes": []}
    with Processes(tmp) as procs:
        for n in args.sizes:
            for i, delivery in enumerate(args.delivery):  # certificates do not depend on it: measured once
                certs = args.certs if i == len(args.delivery) - 1 else 0
                results["sizes"].append(measure_size(procs, tmp, n, csrs, args, log, delivery, certs))
    if args.certs > 0:
        results["openssl"] = openssl_baseline(tmp, csrs, args.certs, args.control_cpu)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = dt.datetime.now(dt.UTC)
    commit, dirty = _short_commit()
    machine = _machine()
    try:
        raw = run(args, log)
    except BenchError as exc:
        log(f"control-scale: {exc}")
        return 1
    except KeyboardInterrupt:
        log("control-scale: interrupted; every process it started has been stopped")
        return 130
    json_name = f"control-scale-{started:%Y-%m-%dT%H%M%S}-{commit}.json"
    results = {
        "date": started.isoformat(timespec="seconds"), "commit": commit, "dirty": dirty,
        "command": shlex.join(["python", "-m", "bench.control_scale", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine, "loadavg_before": machine["loadavg"],
        "loadavg_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, **raw,
    }  # fmt: skip
    markdown = render_markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / json_name).write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "CONTROL_SCALE.md").write_text(markdown)
    log(f"control-scale: wrote {args.out / json_name} and {args.out / 'CONTROL_SCALE.md'}")
    print(markdown)
    return 1 if any(s.get("error") for s in results["sizes"]) else 0


if __name__ == "__main__":
    sys.exit(main())
