"""The bench's generated configs are accepted by the parsers of the processes that will read them."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from bench.configs import (
    CLIENT_POD,
    GRPC_POD,
    GRPC_SERVICE,
    GRPC_SERVICE_PORT,
    ONE_HOP_POD,
    SERVER_POD,
    MeshPlan,
    ProxyPorts,
    authority,
    control_config,
    haproxy_cfg,
    nginx_conf,
    one_hop_snapshot,
    proxy_config,
)
from meshctl.api import mesh_pb2
from meshctl.control.config import hash_token, parse_control_config
from meshctl.control.store import MeshStore
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.policy.resolve import router_from_snapshot


def _plan(tmp: Path) -> MeshPlan:
    return MeshPlan(tmp, nginx_port=18080, control_port=18086, control_admin_port=18096,
                    client=ProxyPorts(14143, 14140, 14191), server=ProxyPorts(24143, 24140, 24191),
                    one_hop=ProxyPorts(34143, 34140, 34191))  # fmt: skip


def test_the_control_plane_accepts_its_config_and_knows_both_meshed_pods(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    config = parse_control_config(control_config(plan), base=tmp_path)
    assert {t.pod for t in config.tokens.values()} == {CLIENT_POD, SERVER_POD}
    assert config.tokens[CLIENT_POD].token_sha256 == hash_token(plan.token(CLIENT_POD))
    (service,) = config.services
    (endpoint,) = service.endpoints
    assert endpoint.port == plan.server.inbound and endpoint.identity  # meshed: reached over mTLS
    assert plan.token(CLIENT_POD) != plan.token(SERVER_POD)


def test_every_proxy_config_parses_with_the_right_listeners(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    server = parse_proxy_config(proxy_config(plan, SERVER_POD))
    client = parse_proxy_config(proxy_config(plan, CLIENT_POD))
    one_hop = parse_proxy_config(proxy_config(plan, ONE_HOP_POD))
    assert server.outbound is None and server.inbound is not None
    assert server.inbound.app.port == plan.nginx_port and server.inbound.listen.port == plan.server.inbound
    assert client.outbound is not None and client.outbound.listen.port == plan.client.outbound
    assert one_hop.outbound is not None and one_hop.outbound.listen.port == plan.one_hop.outbound
    assert client.control.address == f"127.0.0.1:{plan.control_port}"


def test_the_one_hop_snapshot_routes_nginx_direct_to_nginx_in_plaintext(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    snapshot = json_format.ParseDict(one_hop_snapshot(plan), mesh_pb2.Snapshot())
    router = router_from_snapshot(snapshot, "bench")
    dest = router.resolve(authority("nginx-direct"))
    assert dest is not None
    (endpoint,) = dest.endpoints
    assert (endpoint.port, endpoint.identity) == (plan.nginx_port, "")


def test_the_grpc_service_is_meshed_behind_its_own_sidecar(tmp_path: Path) -> None:
    plan = MeshPlan(**{**vars(_plan(tmp_path)), "grpc": ProxyPorts(44143, 44140, 44191), "grpc_app_port": 17003})
    config = parse_control_config(control_config(plan), base=tmp_path)
    assert {t.pod for t in config.tokens.values()} == {CLIENT_POD, SERVER_POD, GRPC_POD}
    # What the client sidecar is told: the ratings authority leads to the gRPC sidecar's mTLS inbound.
    router = router_from_snapshot(MeshStore(None, config).snapshot, "bench")
    dest = router.resolve(authority(GRPC_SERVICE, GRPC_SERVICE_PORT))
    assert dest is not None and dest.protocol == "grpc"
    (endpoint,) = dest.endpoints
    assert endpoint.port == 44143 and endpoint.identity == config.tokens[GRPC_POD].identity
    sidecar = parse_proxy_config(proxy_config(plan, GRPC_POD))
    assert sidecar.inbound is not None and sidecar.outbound is None
    assert (sidecar.inbound.listen.port, sidecar.inbound.app.port, sidecar.inbound.app_protocol) == (
        44143, 17003, "grpc")  # fmt: skip
    assert sidecar.identity == endpoint.identity
    # Without gRPC ports the plan meshes nginx alone, as before.
    assert len(parse_control_config(control_config(_plan(tmp_path)), base=tmp_path).services) == 1


def test_nginx_and_haproxy_configs_serve_h1_and_h2c_on_their_ports(tmp_path: Path) -> None:
    conf = nginx_conf(tmp_path, 18080, 18081, body_bytes=16)
    assert "listen 127.0.0.1:18080 reuseport;" in conf and "listen 127.0.0.1:18081 http2;" in conf
    assert f'return 200 "{"x" * 16}";' in conf and "keepalive_requests 10000000;" in conf
    assert "http2" not in nginx_conf(tmp_path, 18080)
    cfg = haproxy_cfg(19000, 18080, 19001)
    assert "bind 127.0.0.1:19001 proto h2" in cfg and cfg.count("server nginx 127.0.0.1:18080") == 1
    assert "nbthread 1" in cfg and "proto h2" not in haproxy_cfg(19000, 18080)
