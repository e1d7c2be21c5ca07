"""ProxyConfig parsing: the platform's files are accepted, bad input names its field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshctl.errors import ConfigError, ExitCode
from meshctl.platform.local import configs
from meshctl.platform.local.addresses import AddressPlan
from meshctl.platform.local.state import Layout
from meshctl.platform.local.topology import DemoOptions, Topology
from meshctl.proxy.config import Addr, load_proxy_config, parse_addr, parse_proxy_config

EXAMPLE: dict[str, Any] = {
    "pod": "books-0", "namespace": "booksapp", "deployment": "books", "service_account": "books",
    "identity": "books.booksapp.serviceaccount.identity.meshctl.cluster.local",
    "inbound": {"listen": "127.77.2.1:4143", "app": "127.77.2.1:7000", "app_protocol": "http"},
    "outbound": {"listen": "127.77.2.1:4140"},
    "ingress": None,
    "admin": {"listen": "127.77.2.1:4191"},
    "control": {"address": "127.77.0.2:8086",
                "identity": "meshctl-control.meshctl-system.serviceaccount.identity.meshctl.cluster.local"},
    "trust_anchors": "/root/.meshctl/identity/ca.pem",
    "token_file": "/root/.meshctl/tokens/books-0.token",
    "balancer": "ewma",
    "log_level": "info",
}  # fmt: skip


def test_contract_example_parses() -> None:
    config = parse_proxy_config(EXAMPLE)
    assert config.inbound is not None and config.inbound.app == Addr("127.77.2.1", 7000)
    assert config.outbound is not None and config.outbound.listen.port == 4140
    assert config.ingress is None
    assert config.control.address == "127.77.0.2:8086"
    assert parse_proxy_config(config.to_json()) == config


def test_every_file_the_local_platform_writes_parses(tmp_path: Path) -> None:
    topology = Topology(AddressPlan.parse("127.77.0.0/16"), DemoOptions())
    layout = Layout(tmp_path)
    pods = list(topology.workloads)
    assert pods
    for pod in pods:
        parse_proxy_config(configs.proxy_config(layout, topology, pod))
    assert topology.ingress is not None
    ingress = parse_proxy_config(configs.proxy_config(layout, topology, topology.ingress, is_ingress=True))
    assert ingress.ingress is not None and ingress.inbound is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pod": ""}, "pod"),
        ({"identity": None}, "identity"),
        ({"inbound": {"listen": "127.0.0.1", "app": "127.0.0.1:7000"}}, "inbound.listen"),
        ({"inbound": {"listen": "127.0.0.1:99999", "app": "127.0.0.1:7000"}}, "inbound.listen"),
        ({"inbound": {"listen": "127.0.0.1:1", "app": "x:y"}}, "inbound.app"),
        ({"inbound": {"listen": "127.0.0.1:1", "app": "127.0.0.1:2", "app_protocol": "tcp"}}, "inbound.app_protocol"),
        ({"admin": None}, "admin"),
        ({"admin": "127.0.0.1:1"}, "admin"),
        ({"control": {"address": "nowhere"}}, "control.address"),
        ({"balancer": "random"}, "balancer"),
        ({"inbound": None, "outbound": None}, "at least one"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_proxy_config({**EXAMPLE, **change})
    assert field in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_load_reports_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="p.json: not valid JSON"):
        load_proxy_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_proxy_config(tmp_path / "missing.json")
    path.write_text(json.dumps(EXAMPLE))
    assert load_proxy_config(path).pod == "books-0"


def test_ipv6_addresses() -> None:
    assert parse_addr("[::1]:4140", "x") == Addr("::1", 4140)
    assert str(Addr("::1", 4140)) == "[::1]:4140"
