"""The demo's pods, their addresses and the configuration files `up` writes for them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from meshctl.control.config import hash_token, parse_control_config
from meshctl.platform.local import configs
from meshctl.platform.local.addresses import AddressPlan
from meshctl.platform.local.state import Layout
from meshctl.platform.local.topology import DEMO_SERVICES, DemoOptions, Topology


def demo_topology(subnet: str = "127.77.0.0/16") -> Topology:
    return Topology(AddressPlan.parse(subnet), DemoOptions())


def test_demo_has_the_call_chain_services_and_replicas() -> None:
    topology = demo_topology()
    services = {p.service for p in topology.workloads}
    assert {"webapp", "books", "authors", "ratings"} <= services
    assert any(s.replicas >= 2 for s in DEMO_SERVICES)
    assert {p.protocol for p in topology.workloads} == {"http", "grpc"}
    assert topology.ingress is not None and topology.ingress.pod == "ingress-0"


def test_every_pod_has_its_own_ip_and_every_listener_is_unique() -> None:
    topology = demo_topology()
    ips = [p.ip for p in topology.proxies]
    assert len(ips) == len(set(ips))
    addresses = [a for a, _ in topology.listen_addresses()]
    assert len(addresses) == len(set(addresses))
    assert all(a.startswith("127.77.") for a in addresses)


def test_without_demo_only_control_plane_and_prometheus() -> None:
    topology = Topology(AddressPlan.parse("127.77.0.0/16"), None)
    assert topology.workloads == () and topology.ingress is None and not topology.traffic
    assert [w for _, w in topology.listen_addresses()] == [
        "control plane gRPC API",
        "control plane admin",
        "Prometheus",
    ]


def test_written_configs(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    topology = demo_topology()
    configs.write_configs(layout, topology)

    control = json.loads(layout.control_json.read_text())
    parsed = parse_control_config(control)  # the control plane accepts what we write
    assert {s.name for s in parsed.services} == {"webapp", "books", "authors", "ratings"}
    books = next(s for s in parsed.services if s.name == "books")
    assert [e.pod for e in books.endpoints] == ["books-0", "books-1"]
    assert all(e.port == 4143 for e in books.endpoints)
    assert stat.S_IMODE(layout.control_json.stat().st_mode) == 0o600

    for pod in topology.proxies:
        token = layout.token(pod.pod)
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert parsed.tokens[pod.pod].token_sha256 == hash_token(token.read_text())
        assert parsed.tokens[pod.pod].identity == pod.identity
        proxy = json.loads(layout.proxy_config(pod.pod).read_text())
        assert proxy["pod"] == pod.pod and proxy["admin"] == {"listen": pod.admin}
        assert proxy["control"]["address"] == "127.77.0.2:8086"
        assert proxy["token_file"] == str(token)

    webapp = json.loads(layout.proxy_config("webapp-0").read_text())
    assert webapp["inbound"] == {
        "listen": "127.77.1.1:4143",
        "app": "127.77.1.1:7000",
        "app_protocol": "http",
    }
    assert webapp["outbound"] == {"listen": "127.77.1.1:4140"}
    ratings = json.loads(layout.proxy_config("ratings-0").read_text())
    assert ratings["inbound"]["app_protocol"] == "grpc"
    ingress = json.loads(layout.proxy_config("ingress-0").read_text())
    assert ingress["ingress"] == {"listen": "127.77.0.4:8080"}  # what it exposes comes from a MeshIngress


def test_tokens_change_on_every_start(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    pods = demo_topology().proxies[:1]
    first = configs.write_tokens(layout, pods)
    second = configs.write_tokens(layout, pods)
    assert first != second
