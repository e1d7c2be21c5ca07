"""What the benchmark measures: nginx alone, HAProxy in front of it, and our proxies in front of it, each
started from a config in the run's temp directory and checked to answer before any load is offered.

Pinning: every proxy under test runs on CPU 1; nginx, the load tools and the control plane on CPU 0.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.configs import (
    CLIENT_POD,
    DIRECT_SERVICE,
    GRPC_POD,
    MESH_SERVICE,
    NAMESPACE,
    ONE_HOP_POD,
    SERVER_POD,
    MeshPlan,
    ProxyPorts,
    authority,
    control_config,
    haproxy_cfg,
    haproxy_mtls_options,
    nginx_conf,
    one_hop_snapshot,
    proxy_config,
)
from bench.procs import BenchError, Proc, Processes, free_port, http_ok, port_open, wait_for

PROXY_CPU = 1
LOAD_CPU = 0
START_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Arm:
    """One way of reaching nginx: a URL, the Host header to send, and the proxies on the way."""

    name: str
    description: str
    url: str
    host_header: str
    proxies: list[Proc] = field(default_factory=list)
    h2_url: str = ""  # where h2load (h2c, prior knowledge) goes; "" = the same as url
    h2_skip: str = ""  # why the HTTP/2 phase leaves this arm out ("" = it does not)
    latency: bool = True  # measured in the open-loop phase too (the floor arms are throughput only)

    @property
    def h2_target(self) -> str:
        return self.h2_url or self.url


def python_env() -> dict[str, str]:
    """The environment of our Python processes: this interpreter's packages plus the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def start_nginx(procs: Processes, tmp: Path) -> tuple[Proc, int, int]:
    """nginx on CPU 0; returns it, its HTTP/1.1 port and its h2c port."""
    port, h2_port = free_port(), free_port()
    (tmp / "nginx-temp").mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port, h2_port))
    proc = procs.start(
        "nginx", ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")], cpu=LOAD_CPU
    )
    wait_for("nginx to answer", lambda: http_ok(f"http://127.0.0.1:{port}/"), START_TIMEOUT_S, [proc])
    return proc, port, h2_port


def start_haproxy(procs: Processes, tmp: Path, nginx_port: int) -> Arm:
    port, h2_port = free_port(), free_port()
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(haproxy_cfg(port, nginx_port, h2_port))
    proc = procs.start("haproxy", ["haproxy", "-db", "-f", str(cfg)], cpu=PROXY_CPU)
    url = f"http://127.0.0.1:{port}/"
    wait_for("HAProxy to answer", lambda: http_ok(url), START_TIMEOUT_S, [proc])
    what = "HAProxy, 1 thread (http mode, keep-alive both sides)"
    return Arm("haproxy", what, url, authority(MESH_SERVICE), [proc], h2_url=f"http://127.0.0.1:{h2_port}/")


def start_haproxy_2hop_mtls(procs: Processes, tmp: Path, nginx_port: int) -> Arm:
    """The peer of our two-hop arm, in the same shape: HAProxy → mTLS → HAProxy → nginx, both HAProxies on
    the proxies' core, certified by the bench mesh's CA (TLS 1.3, ECDSA P-256, verified both ways).

    HTTP/1.1 crosses the TLS hop as HTTP/1.1; h2c from h2load crosses it as h2 (ALPN), then HTTP/1.1 to
    nginx: the path our two proxies give each protocol."""
    # Imported here so that the rest of the bench runs even where the mesh's CA code does not.
    from bench.peer_tls import issue_peer_certificates

    certs = issue_peer_certificates(tmp / "identity", tmp / "peer-certs")
    out_port, out_h2_port, in_port = free_port(), free_port(), free_port()
    server_tls = haproxy_mtls_options(certs.server_pem, certs.anchors) + " alpn h2,http/1.1"
    (tmp / "haproxy-in.cfg").write_text(haproxy_cfg(in_port, nginx_port, bind_tls=server_tls))
    client_tls = haproxy_mtls_options(certs.client_pem, certs.anchors, verify_host=certs.server_name)
    (tmp / "haproxy-out.cfg").write_text(
        haproxy_cfg(out_port, in_port, out_h2_port, server_tls=client_tls, h2_server_tls=f"{client_tls} alpn h2")
    )
    inner = procs.start("haproxy-in", ["haproxy", "-db", "-f", str(tmp / "haproxy-in.cfg")], cpu=PROXY_CPU)
    outer = procs.start("haproxy-out", ["haproxy", "-db", "-f", str(tmp / "haproxy-out.cfg")], cpu=PROXY_CPU)
    url = f"http://127.0.0.1:{out_port}/"
    wait_for("two HAProxies with mTLS to answer", lambda: http_ok(url), START_TIMEOUT_S, [outer, inner])
    what = "two HAProxies: HAProxy → mTLS (TLS 1.3, the mesh's CA) → HAProxy → nginx, the peer of mesh-2hop-mtls"
    return Arm("haproxy-2hop-mtls", what, url, authority(MESH_SERVICE), [outer, inner],
               h2_url=f"http://127.0.0.1:{out_h2_port}/")  # fmt: skip


def direct_arm(nginx_port: int, nginx_h2_port: int) -> Arm:
    return Arm("direct", "straight to nginx", f"http://127.0.0.1:{nginx_port}/", authority(MESH_SERVICE),
               h2_url=f"http://127.0.0.1:{nginx_h2_port}/")  # fmt: skip


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def plan_mesh(tmp: Path, nginx_port: int) -> MeshPlan:
    def ports() -> ProxyPorts:
        return ProxyPorts(inbound=free_port(), outbound=free_port(), admin=free_port())

    return MeshPlan(tmp, nginx_port, free_port(), free_port(), client=ports(), server=ports(), one_hop=ports(),
                    grpc=ports(), grpc_app_port=free_port())  # fmt: skip


def write_mesh_files(plan: MeshPlan) -> tuple[Path, dict[str, Path]]:
    """Identity material, tokens, control.json, one ProxyConfig per pod and the one-hop proxy's snapshot."""
    # Imported here so that the nginx/HAProxy part of the bench runs even where the mesh does not.
    from meshctl.control.ca import ensure_identity_material

    ensure_identity_material(plan.identity_dir)
    (plan.tmp / "config").mkdir(exist_ok=True)
    control = plan.tmp / "control.json"
    control.write_text(json.dumps(control_config(plan), indent=2))
    configs: dict[str, Path] = {}
    for pod in (CLIENT_POD, SERVER_POD, ONE_HOP_POD, *([GRPC_POD] if plan.grpc else [])):
        _write_private(plan.token_file(pod), plan.token(pod))
        path = plan.tmp / "proxies" / f"{pod}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(proxy_config(plan, pod), indent=2))
        configs[pod] = path
    (plan.tmp / "one-hop-snapshot.json").write_text(json.dumps(one_hop_snapshot(plan), indent=2))
    return control, configs


def start_mesh(procs: Processes, tmp: Path, nginx_port: int) -> tuple[list[Arm], dict[str, Proc]]:
    """Control plane + client-side and server-side proxies; the one-hop and two-hop (mTLS) arms.

    Two hops: `python -m meshctl.proxy` twice, certified and fed by the control plane: the client
    sidecar's outbound routes `nginx` to the server sidecar's mTLS inbound, which forwards to nginx.
    One hop: a third client sidecar (bench.sidecar, no control plane) routes `nginx-direct`, an
    endpoint that is not meshed, straight to nginx in plaintext: the sidecar's own cost, as in
    HAProxy's arm.
    """
    plan = plan_mesh(tmp, nginx_port)
    control_json, configs = write_mesh_files(plan)
    env = python_env()
    control = procs.start(
        "control", [sys.executable, "-m", "meshctl.control", "--config", str(control_json)],
        cpu=LOAD_CPU, env=env,
    )  # fmt: skip
    wait_for("the control plane to listen", lambda: port_open("127.0.0.1", plan.control_port),
             START_TIMEOUT_S, [control])  # fmt: skip
    proxies: dict[str, Proc] = {}
    for pod in (SERVER_POD, CLIENT_POD):
        proxies[pod] = procs.start(
            f"proxy-{pod}", [sys.executable, "-m", "meshctl.proxy", "--config", str(configs[pod])],
            cpu=PROXY_CPU, env=env,
        )  # fmt: skip
    sidecar_argv = [
        sys.executable,
        "-m",
        "bench.sidecar",
        "--config",
        str(configs[ONE_HOP_POD]),
        "--identity-dir",
        str(plan.identity_dir),
        "--snapshot",
        str(tmp / "one-hop-snapshot.json"),
    ]
    # Not named proxy-*: without the control client its memory is not the sidecar's (report.OURS_PREFIX).
    proxies[ONE_HOP_POD] = procs.start(f"sidecar-{ONE_HOP_POD}", sidecar_argv, cpu=PROXY_CPU, env=env)
    everyone = [control, *proxies.values()]
    for pod, ports in ((SERVER_POD, plan.server), (CLIENT_POD, plan.client)):
        ready = f"http://127.0.0.1:{ports.admin}/ready"
        wait_for(f"{pod} to be ready ({ready})", partial(http_ok, ready), START_TIMEOUT_S, everyone)
    client, server, one = proxies[CLIENT_POD], proxies[SERVER_POD], proxies[ONE_HOP_POD]
    arms = [
        Arm("mesh-1hop", "one proxy: client sidecar outbound → nginx (plaintext)",
            f"http://127.0.0.1:{plan.one_hop.outbound}/", authority(DIRECT_SERVICE), [one],
            h2_skip="the proxy's HTTP/2 path dials upstreams with mTLS only (h2_dial refuses an endpoint "
                    "without an identity), so h2 to a plaintext nginx is refused"),
        Arm("mesh-2hop-mtls", "two proxies: client sidecar → mTLS → server sidecar → nginx",
            f"http://127.0.0.1:{plan.client.outbound}/", authority(MESH_SERVICE), [client, server]),
    ]  # fmt: skip
    for arm in arms:
        wait_for(f"a 200 through {arm.name} ({arm.host_header})",
                 partial(http_ok, arm.url, arm.host_header), START_TIMEOUT_S, everyone)  # fmt: skip
    return arms, {"control": control, **proxies}


FLOOR_H2_SKIP = "the floor speaks HTTP/1.1 only"


def floor_tls_files(identity_dir: Path, out: Path, identity: str, label: str) -> str:
    """A leaf for `identity` from the run's issuer (as our proxies get theirs), written as the floor's
    CERT,KEY,CA argument: the floor's TLS hop presents the same kind of certificate as our mTLS hop."""
    from bench.sidecar import issue

    cert = issue(identity_dir, identity)
    files = (out / f"{label}.chain.pem", out / f"{label}.key.pem", out / f"{label}.ca.pem")
    for path, pem in zip(files, (cert.cert_chain_pem, cert.key_pem, cert.trust_anchors_pem), strict=True):
        _write_private(path, pem.decode("ascii"))
    return ",".join(str(p) for p in files)


def start_floor(procs: Processes, tmp: Path, nginx_port: int) -> tuple[list[Arm], list[Proc]]:
    """The language floor (bench.floor) in the shapes of our two arms, pinned as our proxies are.

    floor-1hop: client → floor → nginx. floor-2hop-tls: client → floor → TLS 1.3 with client
    certificates (the mesh's issuer, the two-hop proxies' identities) → floor → nginx, both floors on
    the proxies' core. Needs the mesh's identity material (write_mesh_files) in tmp/identity.
    """
    from meshctl.identity import workload_identity

    env = python_env()
    identity_dir, out = tmp / "identity", tmp / "floor"
    client_id, server_id = (workload_identity(account, NAMESPACE) for account in ("bench-client", "nginx"))
    one, front, back = free_port(), free_port(), free_port()

    def floor(name: str, listen: int, upstream: int, *tls: str) -> Proc:
        argv = [sys.executable, "-m", "bench.floor", "--listen", f"127.0.0.1:{listen}",
                "--upstream", f"127.0.0.1:{upstream}", *tls]  # fmt: skip
        return procs.start(name, argv, cpu=PROXY_CPU, env=env)

    one_proc = floor("floor-1hop", one, nginx_port)
    server_tls = floor_tls_files(identity_dir, out, server_id, "server")
    back_proc = floor("floor-2hop-server", back, nginx_port, "--tls-server", server_tls)
    client_tls = floor_tls_files(identity_dir, out, client_id, "client")
    front_proc = floor("floor-2hop-client", front, back, "--tls-client", client_tls, "--server-name", server_id)
    host = authority(MESH_SERVICE)  # nginx ignores it; the floor never reads it
    arms = [
        Arm("floor-1hop", "the language floor: bench.floor (uvloop + httptools pass-through) → nginx",
            f"http://127.0.0.1:{one}/", host, [one_proc], h2_skip=FLOOR_H2_SKIP, latency=False),
        Arm("floor-2hop-tls", "the language floor twice: bench.floor → mTLS (same certificates, TLS 1.3) → "
            "bench.floor → nginx", f"http://127.0.0.1:{front}/", host, [front_proc, back_proc],
            h2_skip=FLOOR_H2_SKIP, latency=False),
    ]  # fmt: skip
    everyone = [one_proc, front_proc, back_proc]
    for arm in arms:
        wait_for(f"a 200 through {arm.name}", partial(http_ok, arm.url, arm.host_header), START_TIMEOUT_S, everyone)
    return arms, everyone


def tool_versions() -> dict[str, str]:
    import subprocess

    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable ({exc.__class__.__name__})"
        text = (done.stdout or done.stderr).strip()
        return text.splitlines()[0] if text else "unknown"

    return {
        "nginx": first_line(["nginx", "-v"]),
        "haproxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "--version"]),
        "h2load": first_line(["h2load", "--version"]),
        "python": sys.version.split()[0],
    }


def require_tools() -> None:
    import shutil

    missing = [t for t in ("nginx", "haproxy", "wrk", "taskset") if shutil.which(t) is None]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)} (apt-get install -y haproxy nginx-light wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("the bench pins the proxy and the load tools to separate cores; it needs 2 CPUs")
