"""Configuration files of every process the benchmark starts: nginx, HAProxy, our control plane and proxies.

Pure functions of addresses and paths, so a test can read what the job will run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshctl.control.config import hash_token
from meshctl.identity import control_plane_identity, service_fqdn, workload_identity

BODY_BYTES = 1024
NAMESPACE = "bench"
# The mesh service backed by the inbound proxy in front of nginx (two hops, mTLS between the proxies).
MESH_SERVICE = "nginx"
# The same nginx as a service whose endpoint is not meshed: the outbound proxy talks to it in plaintext
# (one hop).
DIRECT_SERVICE = "nginx-direct"
SERVICE_PORT = 80
# The gRPC service (bench.grpc_service, the demo's Ratings contract) behind its own server-side sidecar.
GRPC_SERVICE = "ratings"
GRPC_SERVICE_PORT = 7003


def authority(service: str, port: int = SERVICE_PORT) -> str:
    """The canonical authority the client puts in its Host header to address a mesh service."""
    return f"{service_fqdn(service, NAMESPACE)}:{port}"


def nginx_conf(tmp: Path, port: int, h2_port: int | None = None, body_bytes: int = BODY_BYTES) -> str:
    """One worker serving a fixed body from memory, over HTTP/1.1 on `port` and, if given, over h2c (prior
    knowledge) on `h2_port`; every path nginx writes to is under tmp."""
    body = "x" * body_bytes
    temp = tmp / "nginx-temp"
    h2_listen = f"listen 127.0.0.1:{h2_port} http2;" if h2_port else ""
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "nginx-error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # nginx closes a keep-alive (or h2) connection after 1,000 requests by default; the tools would reconnect.
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        {h2_listen}
        location / {{
            default_type text/plain;
            return 200 "{body}";
        }}
    }}
}}
"""


def haproxy_cfg(
    port: int,
    backend_port: int,
    h2_port: int | None = None,
    *,
    bind_tls: str = "",
    server_tls: str = "",
    h2_server_tls: str = "",
) -> str:
    """HAProxy as the peer: one thread, HTTP mode, keep-alive on both sides, no logging; with `h2_port`,
    also an h2c frontend to the same HTTP/1.1 backend (as our proxies do for an "http" service).
    `bind_tls` / `server_tls` are HAProxy `ssl ...` options appended to the bind line / the server line;
    `h2_server_tls` gives the h2c frontend a backend of its own with these options instead (e.g. h2 over
    TLS to a second HAProxy, as our outbound proxy speaks h2 to the inbound one)."""
    h2_backend = "nginx_h2" if h2_server_tls else "nginx"
    h2 = (
        f"""
frontend bench_h2
    bind 127.0.0.1:{h2_port} proto h2
    default_backend {h2_backend}
"""
        if h2_port
        else ""
    )
    if h2_port and h2_server_tls:
        h2 += f"""
backend nginx_h2
    server nginx 127.0.0.1:{backend_port}{h2_server_tls}
"""
    return f"""global
    nbthread 1
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    http-reuse safe
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:{port}{bind_tls}
    default_backend nginx

backend nginx
    server nginx 127.0.0.1:{backend_port}{server_tls}
{h2}"""


@dataclass(frozen=True)
class ProxyPorts:
    inbound: int
    outbound: int
    admin: int


@dataclass(frozen=True)
class MeshPlan:
    """Addresses of the mesh part of the bench: one control plane, a client-side and a server-side proxy."""

    tmp: Path
    nginx_port: int
    control_port: int
    control_admin_port: int
    client: ProxyPorts  # the client's sidecar: its outbound listener is what the load tools hit
    server: ProxyPorts  # nginx's sidecar: mTLS inbound, forwards to nginx
    one_hop: ProxyPorts  # a client sidecar whose only service is nginx itself, not meshed (plaintext)
    grpc: ProxyPorts | None = None  # the gRPC server's sidecar: mTLS inbound, forwards to grpc_app_port
    grpc_app_port: int = 0

    @property
    def identity_dir(self) -> Path:
        return self.tmp / "identity"

    def token(self, pod: str) -> str:
        # Deterministic per run directory, never reused across runs (the directory is new each time).
        return hashlib.sha256(f"{self.tmp}:{pod}".encode()).hexdigest()

    def token_file(self, pod: str) -> Path:
        return self.tmp / "tokens" / f"{pod}.token"


CLIENT_POD = "bench-client-0"
SERVER_POD = "nginx-0"
ONE_HOP_POD = "bench-client-1"
GRPC_POD = "ratings-0"


def _identity(service_account: str) -> str:
    return workload_identity(service_account, NAMESPACE)


def control_config(plan: MeshPlan) -> dict[str, Any]:
    """ControlConfig: the nginx service, whose one endpoint is the server proxy's mTLS inbound (and the gRPC
    service likewise when the plan has one)."""
    pods = {CLIENT_POD: _identity("bench-client"), SERVER_POD: _identity("nginx")}
    if plan.grpc is not None:
        pods[GRPC_POD] = _identity(GRPC_SERVICE)
    return {
        "listen": f"127.0.0.1:{plan.control_port}",
        "admin": f"127.0.0.1:{plan.control_admin_port}",
        "identity_dir": str(plan.identity_dir),
        "config_dir": str(plan.tmp / "config"),
        "tokens": {
            pod: {"token_sha256": hash_token(plan.token(pod)), "identity": ident} for pod, ident in pods.items()
        },
        "services": [
            {
                "name": MESH_SERVICE,
                "namespace": NAMESPACE,
                "port": SERVICE_PORT,
                "protocol": "http",
                "endpoints": [
                    {
                        "address": "127.0.0.1",
                        "port": plan.server.inbound,
                        "pod": SERVER_POD,
                        "identity": pods[SERVER_POD],
                        "labels": {"deployment": "nginx"},
                    }
                ],
            },
            *([_grpc_service(plan.grpc, pods[GRPC_POD])] if plan.grpc is not None else []),
        ],
        "cert_lifetime_hours": 24,
    }


def _grpc_service(ports: ProxyPorts, identity: str) -> dict[str, Any]:
    endpoint = {"address": "127.0.0.1", "port": ports.inbound, "pod": GRPC_POD, "identity": identity,
                "labels": {"deployment": GRPC_SERVICE}}  # fmt: skip
    return {"name": GRPC_SERVICE, "namespace": NAMESPACE, "port": GRPC_SERVICE_PORT, "protocol": "grpc",
            "endpoints": [endpoint]}  # fmt: skip


def one_hop_snapshot(plan: MeshPlan) -> dict[str, Any]:
    """Discovery snapshot (mesh_pb2.Snapshot as JSON) of the one-hop proxy: nginx-direct, not meshed.

    An endpoint without an identity is reached in plaintext; the control plane never lists one, so the
    one-hop proxy is fed this directly (bench.sidecar).
    """
    endpoint = {"address": "127.0.0.1", "port": plan.nginx_port, "pod": "nginx-direct-0", "identity": "",
                "ready": True}  # fmt: skip
    service = {"name": DIRECT_SERVICE, "namespace": NAMESPACE, "port": SERVICE_PORT, "protocol": "http",
               "endpoints": [endpoint]}  # fmt: skip
    return {"version": "1", "services": [service]}


def proxy_config(plan: MeshPlan, pod: str) -> dict[str, Any]:
    """ProxyConfig of a client-side proxy (outbound used) or of a server-side one (inbound used)."""
    server_side = pod in (SERVER_POD, GRPC_POD)
    ports = {SERVER_POD: plan.server, CLIENT_POD: plan.client, ONE_HOP_POD: plan.one_hop, GRPC_POD: plan.grpc}[pod]
    if ports is None:
        raise ValueError(f"the plan has no ports for {pod}")
    grpc = pod == GRPC_POD
    account = GRPC_SERVICE if grpc else "nginx" if server_side else "bench-client"
    return {
        "pod": pod,
        "namespace": NAMESPACE,
        "deployment": account,
        "service_account": account,
        "identity": _identity(account),
        "inbound": {
            "listen": f"127.0.0.1:{ports.inbound}",
            "app": f"127.0.0.1:{plan.grpc_app_port if grpc else plan.nginx_port}",
            "app_protocol": "grpc" if grpc else "http",
        },
        "outbound": None if server_side else {"listen": f"127.0.0.1:{ports.outbound}"},
        "ingress": None,
        "admin": {"listen": f"127.0.0.1:{ports.admin}"},
        "control": {"address": f"127.0.0.1:{plan.control_port}", "identity": control_plane_identity()},
        "trust_anchors": str(plan.identity_dir / "ca.pem"),
        "token_file": str(plan.token_file(pod)),
        "balancer": "ewma",
        "log_level": "warn",
    }


def haproxy_mtls_options(crt: Path, ca_file: Path, verify_host: str = "") -> str:
    """HAProxy's side of a mutual-TLS hop like our sidecars': TLS 1.3 only, the peer's certificate required
    and verified against `ca_file`, and on the client side the server's name checked (`verify_host`)."""
    host = f" verifyhost {verify_host}" if verify_host else ""
    return f" ssl crt {crt} ca-file {ca_file} verify required ssl-min-ver TLSv1.3{host}"
