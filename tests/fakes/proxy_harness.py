"""Run our proxy without a control plane, and compare its HTTP/1.1 throughput with nginx direct and HAProxy.

`run`: one proxy process whose runtime gets a certificate (from a PKI directory shared by the processes)
and a one-service snapshot directly, as the control client would deliver them.

    python -m tests.fakes.proxy_harness run --pki DIR --pod client-0 --outbound 127.0.0.1:4140 \
        --endpoint 127.0.0.1:8080 [--endpoint-identity ID --endpoint-pod server-0]
    python -m tests.fakes.proxy_harness run --pki DIR --pod server-0 --inbound 127.0.0.1:4143 \
        --app 127.0.0.1:8080 --endpoint 127.0.0.1:4143 --endpoint-identity ID --endpoint-pod server-0

`compare`: nginx (1 KiB body) direct, through HAProxy, through one proxy (plaintext to nginx) and through
two proxies (mTLS between them), each measured with `wrk -t1 -c32`; proxies and HAProxy pinned to one core,
nginx and wrk to another. Prints requests/s and the ratios to HAProxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from tests.ports import free_port

NAMESPACE = "bench"
SERVICE, SERVICE_PORT = "nginx", 80
HOST_HEADER = f"{SERVICE}.{NAMESPACE}.svc.cluster.local:{SERVICE_PORT}"
REPO = Path(__file__).resolve().parents[2]


def identity_of(pod: str) -> str:
    return workload_identity(pod.rsplit("-", 1)[0], NAMESPACE)


def snapshot(endpoint: str, identity: str, pod: str) -> mesh_pb2.Snapshot:
    host, _, port = endpoint.rpartition(":")
    ep = mesh_pb2.Endpoint(address=host, port=int(port), identity=identity, pod=pod, ready=True)
    svc = mesh_pb2.Service(name=SERVICE, namespace=NAMESPACE, port=SERVICE_PORT, protocol="http", endpoints=[ep])
    return mesh_pb2.Snapshot(version=1, services=[svc])


async def serve(args: argparse.Namespace) -> None:
    from meshctl.proxy.config import parse_proxy_config
    from meshctl.proxy.main import Proxy
    from meshctl.proxy.runtime import build_runtime
    from tests.fakes.mesh_pki import MeshPki

    doc: dict[str, object] = {
        "pod": args.pod, "namespace": NAMESPACE, "identity": identity_of(args.pod),
        "admin": {"listen": "127.0.0.1:1"}, "control": {"address": "127.0.0.1:1", "identity": "unused"},
        "trust_anchors": "unused", "token_file": "unused",
    }  # fmt: skip
    if args.outbound:
        doc["outbound"] = {"listen": args.outbound}
    if args.inbound:
        doc["inbound"] = {"listen": args.inbound, "app": args.app}
    config = parse_proxy_config(doc)
    loop = asyncio.get_running_loop()
    runtime = build_runtime(config, clock=loop.time)
    runtime.on_certificate(MeshPki.load(Path(args.pki)).issue(config.identity))
    runtime.on_snapshot(snapshot(args.endpoint, args.endpoint_identity, args.endpoint_pod))
    proxy = Proxy(config, runtime)
    await proxy.start_listeners()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await proxy.stop()


# -- compare -----------------------------------------------------------------------------------------
NGINX_CONF = """daemon off; master_process off; worker_processes 1; pid {tmp}/nginx.pid;
error_log {tmp}/nginx.log warn; events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server {{ listen 127.0.0.1:{port}; location / {{ default_type text/plain; return 200 "{body}"; }} }} }}
"""
HAPROXY_CFG = """global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse safe
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend f
    bind 127.0.0.1:{port}
    default_backend b
backend b
    server n 127.0.0.1:{backend}
"""


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def wrk(port: int, seconds: int, cpu: int) -> float:
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"Host: {HOST_HEADER}",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        print(out, file=sys.stderr)
    found = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if found is None:
        raise RuntimeError(f"wrk printed no result: {out}")
    return float(found.group(1))


@contextlib.contextmanager
def started(argv: list[str], cpu: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(["taskset", "-c", str(cpu), *argv], env=env, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def harness(pki: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.fakes.proxy_harness", "run", "--pki", str(pki), *extra]


def compare(seconds: int, proxy_cpu: int, load_cpu: int) -> dict[str, float]:
    from tests.fakes.mesh_pki import MeshPki

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="meshctl-h1-bench-") as tmp_text, contextlib.ExitStack() as stack:
        tmp = Path(tmp_text)
        MeshPki().save(tmp / "pki")
        nginx, hap, one, out2, in2 = (free_port() for _ in range(5))
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=nginx, body="x" * 1024))
        (tmp / "haproxy.cfg").write_text(HAPROXY_CFG.format(port=hap, backend=nginx))
        haproxy_bin = shutil.which("haproxy") or "/usr/sbin/haproxy"
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        stack.enter_context(started([nginx_bin, "-e", str(tmp / "nginx.log"), "-c", str(tmp / "nginx.conf")],
                                    load_cpu))  # fmt: skip
        stack.enter_context(started([haproxy_bin, "-f", str(tmp / "haproxy.cfg")], proxy_cpu))
        server_id = identity_of("server-0")
        stack.enter_context(started(harness(tmp / "pki", "--pod", "client-0", "--outbound", f"127.0.0.1:{one}",
                                            "--endpoint", f"127.0.0.1:{nginx}"), proxy_cpu))  # fmt: skip
        stack.enter_context(started(harness(tmp / "pki", "--pod", "client-1", "--outbound", f"127.0.0.1:{out2}",
                                            "--endpoint", f"127.0.0.1:{in2}", "--endpoint-identity", server_id,
                                            "--endpoint-pod", "server-0"), proxy_cpu))  # fmt: skip
        stack.enter_context(started(harness(tmp / "pki", "--pod", "server-0", "--inbound", f"127.0.0.1:{in2}",
                                            "--app", f"127.0.0.1:{nginx}", "--endpoint", f"127.0.0.1:{in2}",
                                            "--endpoint-identity", server_id, "--endpoint-pod", "server-0"),
                                    proxy_cpu))  # fmt: skip
        for port in (nginx, hap, one, out2, in2):
            wait_port(port)
        for name, port in (("direct", nginx), ("haproxy", hap), ("proxy_1hop", one), ("proxy_2hop_mtls", out2)):
            wrk(port, 1, load_cpu)  # warm up connections, pools and caches
            results[name] = wrk(port, seconds, load_cpu)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.proxy_harness")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one proxy fed a certificate and a snapshot directly")
    run.add_argument("--pki", required=True)
    run.add_argument("--pod", required=True)
    run.add_argument("--outbound")
    run.add_argument("--inbound")
    run.add_argument("--app")
    run.add_argument("--endpoint", required=True, help="host:port of the service's one endpoint")
    run.add_argument("--endpoint-identity", default="", help="empty: the endpoint is not meshed (plaintext)")
    run.add_argument("--endpoint-pod", default="nginx-0")
    cmp = sub.add_parser("compare", help="wrk through nginx direct, HAProxy, one and two proxies")
    cmp.add_argument("--seconds", type=int, default=5)
    cmp.add_argument("--proxy-cpu", type=int, default=1)
    cmp.add_argument("--load-cpu", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "run":
        import uvloop

        from meshctl.proxy.logs import setup_logging

        setup_logging("warn")
        uvloop.run(serve(args))
        return 0
    results = compare(args.seconds, args.proxy_cpu, args.load_cpu)
    for name, rps in results.items():
        print(f"{name:18} {rps:10.0f} req/s  {rps / results['haproxy']:.2f}x haproxy  "
              f"{rps / results['direct']:.2f}x direct")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
