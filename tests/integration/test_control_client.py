"""ControlClient against a real control plane process: certificate + snapshot, outage, reconnection.

The client runs on an event loop of its own thread, as it runs on the proxy's loop; the test thread
waits on what the callbacks record.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop
from cryptography import x509

from meshctl.api import mesh_pb2
from meshctl.identity import control_plane_identity
from meshctl.pki.certinfo import dns_names, verify_leaf
from meshctl.proxy.control_client import ControlClient, IssuedCertificate
from tests.integration.test_control_plane import BOOKS, PROFILE, ControlProcess, Home, make_home

pytestmark = pytest.mark.integration
T = TypeVar("T")


class LoopThread:
    """A uvloop running in a thread; `run(coro)` executes there and returns its result."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.close()


def started(loop: LoopThread, client: ControlClient) -> ControlClient:
    async def start() -> None:
        client.start()

    loop.run(start())
    return client


@dataclass(frozen=True)
class Control:
    address: str
    identity: str


@dataclass(frozen=True)
class Config:
    """The fields of ProxyConfig the client reads."""

    control: Control
    trust_anchors: Path
    token_file: Path
    pod: str = "books-0"
    namespace: str = "booksapp"
    identity: str = BOOKS


@dataclass
class Received:
    certificates: list[IssuedCertificate] = field(default_factory=list)
    snapshots: list[mesh_pb2.Snapshot] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_certificate(self, issued: IssuedCertificate) -> None:
        with self.changed:
            self.certificates.append(issued)
            self.changed.notify_all()

    def on_snapshot(self, snapshot: mesh_pb2.Snapshot) -> None:
        with self.changed:
            self.snapshots.append(snapshot)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "condition not reached in time"


def _config(home: Home, control_identity: str | None = None) -> Config:
    return Config(Control(home.address, control_identity or control_plane_identity()), home.anchors, home.token_file)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return make_home(tmp_path)


@pytest.fixture
def control(home: Home) -> Iterator[ControlProcess]:
    process = ControlProcess(home).start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop(signal.SIGKILL)


def test_client_gets_a_certificate_and_snapshots(home: Home, control: ControlProcess, loop: LoopThread) -> None:
    received = Received()
    client = started(loop, ControlClient(_config(home), received.on_certificate, received.on_snapshot))
    try:
        received.wait(lambda: bool(received.certificates and received.snapshots))
        issued = received.certificates[0]
        chain = x509.load_pem_x509_certificates(issued.cert_chain_pem)
        verify_leaf(chain, x509.load_pem_x509_certificates(issued.trust_anchors_pem), BOOKS)
        assert dns_names(chain[0]) == [BOOKS] and issued.identity == BOOKS
        assert issued.not_after == chain[0].not_valid_after_utc
        assert b"PRIVATE KEY" in issued.key_pem
        assert [s.name for s in received.snapshots[0].services] == ["books"]

        (home.config_dir / "books.yaml").write_text(PROFILE.format(route="list"))
        received.wait(lambda: len(received.snapshots) >= 2)
        assert [r.kind for r in received.snapshots[-1].resources] == ["ServiceProfile"]
    finally:
        loop.run(client.stop())


def test_client_keeps_state_while_the_control_plane_is_away_and_reconnects(
    home: Home, control: ControlProcess, loop: LoopThread
) -> None:
    received = Received()
    client = started(loop, ControlClient(
        _config(home), received.on_certificate, received.on_snapshot, backoff_initial=0.2, backoff_max=1.0
    ))  # fmt: skip
    try:
        received.wait(lambda: bool(received.certificates and received.snapshots) and client.connected)
        certificate, snapshot = client.certificate, client.snapshot

        control.stop(signal.SIGKILL)
        deadline = time.monotonic() + 20
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.connected
        time.sleep(1.5)  # a few failed reconnection attempts
        assert client.certificate is certificate and client.snapshot is snapshot
        assert len(received.certificates) == 1

        restarted = ControlProcess(home).start()
        try:
            received.wait(lambda: client.connected and len(received.snapshots) >= 2)
            assert received.snapshots[-1].version > snapshot.version  # type: ignore[union-attr]
        finally:
            restarted.stop()
    finally:
        loop.run(client.stop())


def test_client_refuses_a_server_with_another_identity(home: Home, control: ControlProcess, loop: LoopThread) -> None:
    received = Received()
    client = started(loop, ControlClient(
        _config(home, control_identity=BOOKS), received.on_certificate, received.on_snapshot, backoff_max=0.5
    ))  # fmt: skip
    time.sleep(2.0)
    loop.run(client.stop())
    assert received.certificates == [] and received.snapshots == []
    assert "watch opened" not in control.output() and "certified" not in control.output()


def test_stop_is_prompt_even_when_the_control_plane_is_unreachable(tmp_path: Path, loop: LoopThread) -> None:
    home = make_home(tmp_path)  # nothing listens on its address
    client = started(loop, ControlClient(_config(home), lambda _: None, lambda _: None))
    time.sleep(0.3)
    begun = time.monotonic()
    loop.run(client.stop())
    assert time.monotonic() - begun < 2.5
    assert client.certificate is None and client.snapshot is None


def test_a_silent_control_plane_is_noticed_by_keepalive(home: Home, control: ControlProcess, loop: LoopThread,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A control plane that stops answering (SIGSTOP: no RST, no FIN) is detected by unanswered PINGs."""
    from meshctl.proxy import control_client

    monkeypatch.setattr(control_client, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(control_client, "KEEPALIVE_TIMEOUT_S", 0.3)
    received = Received()
    client = started(loop, ControlClient(_config(home), received.on_certificate, received.on_snapshot,
                                         backoff_initial=0.2, backoff_max=0.5))  # fmt: skip
    try:
        received.wait(lambda: client.connected)
        assert control.proc is not None
        control.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.connected
    finally:
        assert control.proc is not None
        control.proc.send_signal(signal.SIGCONT)
        loop.run(client.stop())


def test_the_proxy_process_carries_neither_grpcio_nor_cryptography() -> None:
    """Both stay out of the long-running sidecar: together they cost ~25 MiB of RSS and idle threads (and
    PyYAML another 1.4 MiB: the proxy reads its resources as JSON)."""
    import subprocess

    probe = (
        "import sys, meshctl.proxy.main, meshctl.proxy.control_client, meshctl.proxy.h2.server, "
        "meshctl.metrics.admin, meshctl.metrics.adminapp; "
        "print(sorted(m for m in ('grpc', 'cryptography', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_stopping_during_a_handshake_leaves_no_connection_behind(home: Home, loop: LoopThread) -> None:
    """A control plane that accepts TCP but never answers the TLS handshake (a stopped process, a full
    accept queue): stopping the client then must close that connection, not finish opening it afterwards.
    Regression: the shared connection attempt ran in its own task, which stop() did not cancel."""
    import dataclasses
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    home_silent = dataclasses.replace(home, listen_port=silent.getsockname()[1])
    client = started(loop, ControlClient(_config(home_silent), Received().on_certificate,
                                         Received().on_snapshot))  # fmt: skip
    try:
        silent.settimeout(10)
        accepted, _ = silent.accept()  # the client's handshake is under way
        with accepted:
            assert accepted.recv(5), "no ClientHello"
            loop.run(client.stop())
            accepted.settimeout(2)  # well inside the client's own 5 s handshake timeout
            try:
                while accepted.recv(65536):  # the rest of the ClientHello, then the end of the connection
                    pass
            except TimeoutError:
                raise AssertionError("the half-open connection outlived stop()") from None
            time.sleep(0.3)
            assert loop.run(_no_connection(client))
    finally:
        silent.close()


async def _no_connection(client: ControlClient) -> bool:
    return client._conn is None and (client._connecting is None or client._connecting.done())
