"""The control plane as a real process on loopback: TLS identity, Certify, Watch, reloads, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from meshctl.api import mesh_pb2, mesh_pb2_grpc
from meshctl.control.ca import ensure_identity_material, generate_issuer
from meshctl.control.config import hash_token
from meshctl.identity import control_plane_identity, workload_identity
from meshctl.pki.certinfo import dns_names, verify_leaf
from meshctl.pki.keys import make_csr, new_key, read_pair, write_pair
from tests.ports import free_port

pytestmark = pytest.mark.integration

BOOKS = workload_identity("books", "booksapp")
TOKEN = "books-0-secret-token"
PROFILE = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {{name: books.booksapp.svc.cluster.local}}
spec:
  routes:
  - name: {route}
    condition: {{method: GET, pathRegex: /books}}
"""


@dataclass
class Home:
    root: Path
    listen_port: int
    admin_port: int

    @property
    def control_json(self) -> Path:
        return self.root / "control.json"

    @property
    def anchors(self) -> Path:
        return self.root / "identity" / "ca.pem"

    @property
    def token_file(self) -> Path:
        return self.root / "tokens" / "books-0.token"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listen_port}"


def make_home(root: Path, *, lifetime_hours: float = 24.0) -> Home:
    home = Home(root, free_port(), free_port())
    ensure_identity_material(root / "identity")
    home.config_dir.mkdir(parents=True)
    home.token_file.parent.mkdir()
    home.token_file.write_text(TOKEN + "\n")
    document = {
        "listen": home.address,
        "admin": f"127.0.0.1:{home.admin_port}",
        "identity_dir": "identity",
        "config_dir": "config",
        "tokens": {"books-0": {"token_sha256": hash_token(TOKEN), "identity": BOOKS}},
        "services": [
            {
                "name": "books",
                "namespace": "booksapp",
                "port": 7000,
                "protocol": "http",
                "endpoints": [{"address": "127.77.2.1", "port": 4143, "pod": "books-0", "identity": BOOKS}],
            }
        ],
        "cert_lifetime_hours": lifetime_hours,
    }
    home.control_json.write_text(json.dumps(document))
    return home


class ControlProcess:
    """`python -m meshctl.control` with its stderr in a file, started and stopped within bounded time."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.log = home.root / f"control-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> ControlProcess:
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshctl.control", "--config", str(self.home.control_json)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"control plane exited {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.home.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"control plane not ready after {timeout}s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return make_home(tmp_path)


@pytest.fixture
def control(home: Home) -> Iterator[ControlProcess]:
    process = ControlProcess(home).start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop(signal.SIGKILL)


def channel(home: Home, server_identity: str | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=home.anchors.read_bytes())
    options = [("grpc.ssl_target_name_override", server_identity or control_plane_identity())]
    return grpc.secure_channel(home.address, credentials, options)


def certify_request(identity: str = BOOKS, token: str = TOKEN) -> mesh_pb2.CertifyRequest:
    return mesh_pb2.CertifyRequest(identity=identity, token=token.encode(), csr_der=make_csr(identity, new_key()))


def watch_request(identity: str = BOOKS, token: str = TOKEN) -> mesh_pb2.WatchRequest:
    return mesh_pb2.WatchRequest(proxy_id="books-0", identity=identity, token=token.encode())


def test_good_token_is_certified_with_a_chain_to_the_anchor(home: Home, control: ControlProcess) -> None:
    with channel(home) as ch:
        response = mesh_pb2_grpc.IdentityStub(ch).Certify(certify_request(), timeout=10)
    leaf = x509.load_der_x509_certificate(response.leaf_der)
    intermediates = [x509.load_der_x509_certificate(der) for der in response.intermediates_der]
    verify_leaf([leaf, *intermediates], x509.load_pem_x509_certificates(home.anchors.read_bytes()), BOOKS)
    assert dns_names(leaf) == [BOOKS]
    assert response.valid_until_unix == int(leaf.not_valid_after_utc.timestamp())
    assert "certified " + BOOKS + " for pod books-0" in control.output()


def test_bad_token_is_refused(home: Home, control: ControlProcess) -> None:
    with channel(home) as ch, pytest.raises(grpc.RpcError) as caught:
        mesh_pb2_grpc.IdentityStub(ch).Certify(certify_request(token="guessed"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "token not recognised"


def test_server_is_verified_as_the_control_plane_identity(home: Home, control: ControlProcess) -> None:
    with channel(home, server_identity=BOOKS) as ch, pytest.raises(grpc.RpcError) as caught:
        mesh_pb2_grpc.IdentityStub(ch).Certify(certify_request(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_watch_streams_a_new_snapshot_after_a_resource_changes(home: Home, control: ControlProcess) -> None:
    with channel(home) as ch:
        stream = mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(), timeout=30)
        snapshots = iter(stream)
        first = next(snapshots)
        assert [s.name for s in first.services] == ["books"]
        assert first.services[0].endpoints[0].identity == BOOKS
        assert list(first.resources) == []

        (home.config_dir / "books.yaml").write_text(PROFILE.format(route="list"))
        second = next(snapshots)
        assert second.version > first.version
        assert [(r.kind, r.name) for r in second.resources] == [("ServiceProfile", "books.booksapp.svc.cluster.local")]
        assert json.loads(second.resources[0].spec_json)["routes"][0]["name"] == "list"

        # An invalid edit is refused and logged; the last good profile stays; the next good edit is served.
        (home.config_dir / "books.yaml").write_text(PROFILE.format(route="list") + "    timeout: soon\n")
        deadline = time.monotonic() + 10
        while "invalid resource" not in control.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'spec.routes[0].timeout: expected a duration such as "300ms"' in control.output()
        (home.config_dir / "books.yaml").write_text(PROFILE.format(route="fixed"))
        third = next(snapshots)
        assert third.version == second.version + 1
        assert json.loads(third.resources[0].spec_json)["routes"][0]["name"] == "fixed"
        stream.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (watch_request(token=""), grpc.StatusCode.UNAUTHENTICATED),
        (watch_request(token="guessed"), grpc.StatusCode.UNAUTHENTICATED),
        (watch_request(identity=workload_identity("authors", "booksapp")), grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=["no-token", "unknown-token", "token-of-another-identity"],
)
def test_watch_needs_the_token_of_the_identity_it_names(
    home: Home, control: ControlProcess, request_: mesh_pb2.WatchRequest, code: grpc.StatusCode
) -> None:
    with channel(home) as ch, pytest.raises(grpc.RpcError) as caught:
        next(iter(mesh_pb2_grpc.DiscoveryStub(ch).Watch(request_, timeout=10)))
    assert caught.value.code() is code
    deadline = time.monotonic() + 10
    while "watch refused" not in control.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "watch refused" in control.output()


def test_admin_metrics_count_certificates(home: Home, control: ControlProcess) -> None:
    with channel(home) as ch:
        mesh_pb2_grpc.IdentityStub(ch).Certify(certify_request(), timeout=10)
    with urllib.request.urlopen(f"http://127.0.0.1:{home.admin_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "control_certificates_issued_total 1\n" in text
    with urllib.request.urlopen(f"http://127.0.0.1:{home.admin_port}/live", timeout=5) as response:
        assert response.read() == b"live\n"


def test_sigterm_ends_watch_streams_and_exits_zero(home: Home, control: ControlProcess) -> None:
    with channel(home) as ch:
        stream = mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(), timeout=30)
        snapshots = iter(stream)
        next(snapshots)
        assert control.stop() == 0
        assert list(stream) == []  # the stream ends cleanly, not with an error
    assert "control plane stopped" in control.output()
    assert "Traceback" not in control.output()


def test_invalid_config_is_one_line_and_exit_2(home: Home) -> None:
    home.control_json.write_text(json.dumps({"listen": "nowhere"}))
    process = ControlProcess(home).start(wait=False)
    assert process.proc is not None
    assert process.proc.wait(20) == 2
    output = process.output()
    assert 'listen: expected "host:port"' in output and "Traceback" not in output


def test_second_instance_on_the_same_address_exits_with_conflict(home: Home, control: ControlProcess) -> None:
    second = ControlProcess(home).start(wait=False)
    assert second.proc is not None
    assert second.proc.wait(20) == 5
    assert "cannot listen on" in second.output() and "Traceback" not in second.output()
    assert control.proc is not None and control.proc.poll() is None


def test_expired_issuer_stops_startup_with_a_hint(home: Home) -> None:
    identity = home.root / "identity"
    anchor = read_pair(identity / "ca.pem", identity / "ca.key.pem")
    expired = generate_issuer(anchor, lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2))
    write_pair(identity / "issuer.pem", identity / "issuer.key.pem", expired)
    process = ControlProcess(home).start(wait=False)
    assert process.proc is not None
    assert process.proc.wait(20) == 2
    output = process.output()
    assert "issuer certificate expired at" in output and "hint:" in output and "Traceback" not in output
