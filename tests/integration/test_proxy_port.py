"""`Platform.proxy_port` end to end: a real proxy admin endpoint and a real gRPC server reached through the
fake API server's pod port-forward (websocket, v4.channel.k8s.io) by the official kubernetes client, and
directly on the local platform.

The fake dials the "pod's" port from 127.0.0.1, as the kubelet dials localhost inside the pod's network
namespace: so the admin endpoint, which lets only loopback peers PUT a log level, accepts the forward's PUT.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from meshctl.metrics.admin import AdminApp, listen_address, start_admin_server, stop_admin_server
from meshctl.metrics.registry import ProxyMetrics
from meshctl.platform.base import Capability, Platform, PlatformSpec, ProxyInfo, open_platform
from meshctl.platform.kubernetes.conventions import MESH_LABEL, PROXY_ADMIN_PORT, PROXY_CONTAINER
from tests.fakes.kube_api import FakeKubeApi
from tests.integration.test_proxy_grpc_support import SERVICE, Backend
from tests.unit.metrics.loglevel import LogLevel

pytestmark = pytest.mark.integration

NS, POD = "booksapp", "books-7d4b9c-x2x8k"
TAP_PORT = 4190  # a second port of the same pod: the gRPC server stands in for the tap
TIMEOUT = 10.0


class AdminServer:
    """The proxy's admin endpoint on 127.0.0.1, served by its own event loop in a thread."""

    def __init__(self) -> None:
        self.log = LogLevel()
        self.app = AdminApp(metrics=ProxyMetrics(), ready=lambda: True, get_log_level=self.log.get,
                            set_log_level=self.log.set, config_dump=lambda: {"pod": POD})  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="admin", daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(start_admin_server("127.0.0.1", 0, self.app), self.loop).result(
            TIMEOUT
        )
        self.port = listen_address(self.server)[1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(stop_admin_server(self.server, grace_s=0.5), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


@pytest.fixture
def admin() -> Iterator[AdminServer]:
    server = AdminServer()
    yield server
    server.stop()


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path, admin: AdminServer, backend: Backend) -> Iterator[tuple[FakeKubeApi, Platform]]:
    fake = FakeKubeApi().start()
    fake.add("v1", "pods", meshed_pod())
    fake.forward_to(NS, POD, PROXY_ADMIN_PORT, ("127.0.0.1", admin.port))
    fake.forward_to(NS, POD, TAP_PORT, ("127.0.0.1", backend.port))
    spec = PlatformSpec(name="kubernetes", kubeconfig=str(fake.kubeconfig(tmp_path / "kubeconfig")), namespace=NS)
    platform = open_platform(spec)
    yield fake, platform
    platform.close()
    fake.stop()


def meshed_pod() -> dict[str, object]:
    return {
        "metadata": {"name": POD, "namespace": NS, "labels": {MESH_LABEL: "meshctl-system"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "books-7d4b9c"}]},
        "spec": {"serviceAccountName": "books", "containers": [{"name": "books"}, {"name": PROXY_CONTAINER}]},
        "status": {"phase": "Running", "podIP": "10.244.1.7",
                   "containerStatuses": [{"name": "books", "ready": True, "state": {"running": {}}},
                                         {"name": PROXY_CONTAINER, "ready": True, "state": {"running": {}}}]},
    }  # fmt: skip


def request(host: str, port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def the_proxy(platform: Platform) -> ProxyInfo:
    (proxy,) = platform.proxies()
    assert proxy.pod == POD and proxy.admin == f"10.244.1.7:{PROXY_ADMIN_PORT}"  # unreachable from here
    return proxy


def test_get_and_put_reach_the_admin_endpoint_through_the_port_forward(
    cluster: tuple[FakeKubeApi, Platform], admin: AdminServer
) -> None:
    fake, platform = cluster
    assert Capability.PORT_FORWARD in platform.capabilities
    with platform.proxy_port(the_proxy(platform), PROXY_ADMIN_PORT) as address:
        assert address.host == "127.0.0.1"
        assert request(address.host, address.port, "GET", "/proxy-log-level") == (200, b"info\n")
        status, _ = request(address.host, address.port, "PUT", "/proxy-log-level", b"debug,h2=trace")
        assert status == 204 and admin.log.level == "debug,h2=trace"  # the PUT came from loopback
        assert request(address.host, address.port, "GET", "/proxy-log-level") == (200, b"debug,h2=trace\n")
        status, metrics = request(address.host, address.port, "GET", "/metrics")
        assert status == 200 and b"# TYPE" in metrics
    assert fake.requests[f"GET /api/v1/namespaces/{NS}/pods/{POD}/portforward"] == 4  # one forward per connection


def test_keep_alive_and_concurrent_connections_share_one_handle(cluster: tuple[FakeKubeApi, Platform]) -> None:
    _, platform = cluster
    with platform.proxy_port(the_proxy(platform), PROXY_ADMIN_PORT) as address:
        connection = http.client.HTTPConnection(address.host, address.port, timeout=TIMEOUT)
        for _ in range(5):  # one connection, several requests: the forward lasts as long as the connection
            connection.request("GET", "/ready")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"ready\n")
        connection.close()
        # Everything forwarded arrives from the pod's loopback: one peer to the admin endpoint, which serves at
        # most `max_per_peer` connections of one peer at a time, and a forward's upstream side closes up to
        # a second after its client's: the CLI keeps well within that.
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: request(address.host, address.port, "GET", "/live"), range(4)))
    assert {status for status, _ in answers} == {200}


def test_a_long_lived_http2_stream_runs_through_the_port_forward(
    cluster: tuple[FakeKubeApi, Platform], backend: Backend
) -> None:
    _, platform = cluster

    def same(data: bytes) -> bytes:
        return data

    with (
        platform.proxy_port(the_proxy(platform), TAP_PORT) as address,
        grpc.insecure_channel(str(address)) as channel,
    ):
        count = channel.unary_stream(f"/{SERVICE}/Count", request_serializer=same, response_deserializer=same)
        assert [int(n) for n in count(b"500", timeout=TIMEOUT)] == list(range(500))
        # A bidirectional stream: each message answered before the next is sent, on one HTTP/2 stream.
        echo = channel.stream_stream(f"/{SERVICE}/Echo", request_serializer=same, response_deserializer=same)
        outbox: list[bytes] = []
        ready = threading.Semaphore(0)

        def requests() -> Iterator[bytes]:
            for n in range(20):
                ready.acquire(timeout=TIMEOUT)
                outbox.append(b"m%d" % n)
                yield outbox[-1]

        ready.release()
        replies = []
        for reply in echo(requests(), timeout=TIMEOUT):
            replies.append(reply)
            ready.release()
        assert replies == [b"echo:" + m for m in outbox] and len(replies) == 20


def test_async_callers_enter_the_handle_with_async_with(cluster: tuple[FakeKubeApi, Platform]) -> None:
    _, platform = cluster

    async def scenario() -> bytes:
        async with platform.proxy_port(the_proxy(platform), PROXY_ADMIN_PORT) as address:
            reader, writer = await asyncio.open_connection(address.host, address.port)
            writer.write(b"GET /proxy-log-level HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), TIMEOUT)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"info\n")


def test_what_the_api_server_refuses_is_told_by_the_handle(cluster: tuple[FakeKubeApi, Platform]) -> None:
    _, platform = cluster
    proxy = the_proxy(platform)
    closed_port = platform.proxy_port(proxy, 4999)  # nothing listens there inside the pod
    with closed_port as address, pytest.raises((ConnectionError, http.client.HTTPException)):
        request(address.host, address.port, "GET", "/ready")
    assert "failed to connect to localhost:4999" in (closed_port.failure() or "")

    gone = ProxyInfo("books-gone", NS, "books", "10.244.1.8:4191", "", "sidecar")
    missing_pod = platform.proxy_port(gone, PROXY_ADMIN_PORT)
    with missing_pod as address, pytest.raises((ConnectionError, http.client.HTTPException)):
        request(address.host, address.port, "GET", "/ready")
    assert 'failed: 404 Not Found: pods "books-gone" not found' in (missing_pod.failure() or "")


def test_the_local_platform_reaches_the_proxy_directly(tmp_path: Path, admin: AdminServer) -> None:
    platform = open_platform(PlatformSpec(name="local", home=tmp_path))
    proxy = ProxyInfo(POD, NS, "books", f"127.0.0.1:{PROXY_ADMIN_PORT}", "", "sidecar")
    assert Capability.PORT_FORWARD not in platform.capabilities
    with platform.proxy_port(proxy, admin.port) as address:
        assert (address.host, address.port) == ("127.0.0.1", admin.port)
        assert json.loads(request(address.host, address.port, "GET", "/config.json")[1])["pod"] == POD
