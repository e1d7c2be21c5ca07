"""Proxies' admin endpoints as the CLI meets them: for each pod a real proxy runtime (its config, a certificate
from a test CA, a discovery snapshot with a ServiceProfile) behind the real admin server, on loopback.

The runtime is the proxy's own (`build_runtime`), so /config.json and /metrics answer exactly what a running
proxy answers, without listeners or a control plane. The servers run on one uvloop thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import uvloop

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from meshctl.logs import format_level_spec, parse_level_spec
from meshctl.metrics.admin import listen_address, start_admin_server, stop_admin_server
from meshctl.metrics.adminapp import AdminApp
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from tests.fakes.mesh_pki import MeshPki

TOKEN = "s3cret-service-account-token"  # written to each proxy's token file: must never show in a dump
PROFILE = {"routes": [
    {"name": "GET /books/{id}", "condition": {"method": "GET", "pathRegex": "/books/[^/]*"}, "timeout": "300ms"},
    {"name": "POST /books", "condition": {"method": "POST", "pathRegex": "/books"}, "isRetryable": True},
]}  # fmt: skip


def snapshot(namespace: str, pods: list[str]) -> mesh_pb2.Snapshot:
    endpoints = [mesh_pb2.Endpoint(address=f"10.1.0.{n + 1}", port=7002, identity=workload_identity("books", namespace),
                                   pod=pod, ready=True) for n, pod in enumerate(pods)]  # fmt: skip
    books = mesh_pb2.Service(name="books", namespace=namespace, port=7002, protocol="http", endpoints=endpoints)
    profile = mesh_pb2.Resource(api_version="meshctl.io/v1alpha1", kind="ServiceProfile",
                                name=f"books.{namespace}.svc.cluster.local", namespace=namespace,
                                spec_json=json.dumps(PROFILE))  # fmt: skip
    return mesh_pb2.Snapshot(version=3, services=[books], resources=[profile])


class Level:
    def __init__(self, spec: str) -> None:
        self.current = spec

    def get(self) -> str:
        return self.current

    def set(self, spec: str) -> None:
        self.current = format_level_spec(*parse_level_spec(spec))


@dataclass
class AdminProxy:
    pod: str
    namespace: str
    runtime: ProxyRuntime
    level: Level
    address: tuple[str, int] = ("", 0)


class AdminFleet:
    def __init__(self, scratch: Path, namespace: str, pods: list[str]) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="admin fleet", daemon=True)
        self.thread.start()
        self.servers: list[asyncio.AbstractServer] = []
        self.proxies: dict[str, AdminProxy] = {}
        pki = MeshPki()
        token = scratch / "token"
        token.write_text(TOKEN, encoding="utf-8")
        for pod in pods:
            deployment = pod.rsplit("-", 1)[0]
            identity = workload_identity(deployment, namespace)
            config = parse_proxy_config({
                "pod": pod, "namespace": namespace, "deployment": deployment, "service_account": deployment,
                "identity": identity, "log_level": "info",
                "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "c"},
                "inbound": {"listen": "0.0.0.0:4143", "app": "127.0.0.1:7002"},
                "outbound": {"listen": "127.0.0.1:4140"},
                "trust_anchors": str(scratch / "anchors.pem"), "token_file": str(token),
            })  # fmt: skip
            runtime = build_runtime(config)
            runtime.on_certificate(pki.issue(identity))
            runtime.on_snapshot(snapshot(namespace, pods))
            level = Level("info")
            app = AdminApp(metrics=runtime.metrics, ready=lambda: True, get_log_level=level.get,
                           set_log_level=level.set, config_dump=runtime.config_dump)  # fmt: skip
            server = asyncio.run_coroutine_threadsafe(start_admin_server("127.0.0.1", 0, app), self.loop).result(10)
            self.servers.append(server)
            self.proxies[pod] = AdminProxy(pod, namespace, runtime, level, listen_address(server))

    def close(self) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(stop_admin_server(server), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
