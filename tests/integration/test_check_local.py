"""`meshctl check` against a real local mesh: healthy, then broken on purpose, one way at a time.

The mesh runs in its own MESHCTL_HOME on a free loopback /16 for the whole module. Each test breaks one thing
(a dead proxy, a stopped Prometheus, an expiring, expired or foreign issuer, a proxy of another version),
asserts the check that must fail fails with its code, message and exit code, then repairs the mesh
(with `meshctl check --fix --yes` where that is the remedy under test) so the next test starts healthy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_mesh import UP_TIMEOUT_S, alive, eventually, free_subnet, meshctl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]

SUBNET = free_subnet()
OLD_VERSION = "0.0.1"


def check_json(home: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = meshctl(home, "-o", "json", "check", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def outcomes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for category in document["categories"] for c in category["checks"]}


def record(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "mesh.json").read_text())
    return data


def pid_of(home: Path, pod: str, role: str) -> int:
    component = next(c for c in record(home)["components"] if c["pod"] == pod)
    return int(next(p["pid"] for p in component["processes"] if p["role"] == role))


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.killpg(pid, sig)  # each mesh process leads its own group
    eventually(lambda: not alive(pid), 20, f"pid {pid} to exit")


def healthy(home: Path, *args: str) -> dict[str, Any]:
    """Wait until every check passes (after a repair), bounded by --wait."""
    code, document, stderr = check_json(home, "--wait", "60s", *args)
    assert code == 0, json.dumps([c for c in outcomes(document).values() if c["outcome"] != "passed"]) + stderr
    return document


def fix(home: Path) -> subprocess.CompletedProcess[str]:
    done = meshctl(home, "check", "--fix", "--yes", "--wait", "60s", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("check") / "meshctl-home"
    up = meshctl(path, "up", "--subnet", SUBNET, "--rps", "2", "--timeout", "150", timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield path
    finally:
        meshctl(path, "down")


@pytest.fixture(scope="module")
def identity(home: Path) -> dict[str, bytes]:
    """The original issuer files, to put back after a test replaced them."""
    files = ("issuer.pem", "issuer.key.pem")
    return {name: (home / "identity" / name).read_bytes() for name in files}


def restore_issuer(home: Path, saved: dict[str, bytes]) -> None:
    for name, content in saved.items():
        (home / "identity" / name).write_bytes(content)


def write_issuer(home: Path, *, lifetime: timedelta, now: datetime, foreign: bool = False) -> None:
    from meshctl.control.ca import generate_issuer, generate_trust_anchor
    from meshctl.pki.keys import read_pair, write_pair
    from meshctl.pki.pem import IdentityFiles

    files = IdentityFiles(home / "identity")
    anchor = generate_trust_anchor(now=now) if foreign else read_pair(files.anchor_cert, files.anchor_key)
    write_pair(files.issuer_cert, files.issuer_key, generate_issuer(anchor, lifetime=lifetime, now=now))


def test_check_proxy_passes_right_after_up(home: Path) -> None:
    """`meshctl up && meshctl check --proxy` (the README's steps), with no --wait: up returns only once
    Prometheus has scraped every proxy, so the scrape and metrics checks pass on the first attempt."""
    code, document, stderr = check_json(home, "--proxy")
    found = outcomes(document)
    assert code == 0, json.dumps([c for c in found.values() if c["outcome"] != "passed"]) + stderr
    assert found["MC6003"]["outcome"] == found["MC8004"]["outcome"] == "passed"
    assert found["MC6003"]["attempts"] == 1


def test_every_check_passes_on_the_healthy_mesh(home: Path) -> None:
    document = healthy(home, "--proxy")
    assert document["success"] is True
    assert {c["outcome"] for c in outcomes(document).values()} == {"passed"}
    assert len(outcomes(document)) >= 35

    table = meshctl(home, "check")
    assert table.returncode == 0, table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[:2] == ["local-platform", "--------------"]
    assert lines[-1] == "Status check results are √" and "\x1b[" not in table.stdout
    short = meshctl(home, "check", "-o", "short")
    assert short.returncode == 0 and short.stdout == "Status check results are √\n"

    # CLI time of `meshctl check` next to a bare interpreter, in the same run (reported, never asserted).
    def timed(argv: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(
            argv, capture_output=True, timeout=60, check=False, env={**os.environ, "MESHCTL_HOME": str(home)}
        )
        return time.perf_counter() - started

    bare = min(timed([sys.executable, "-c", "pass"]) for _ in range(3))
    check = min(timed([sys.executable, "-m", "meshctl", "check"]) for _ in range(3))
    sys.stderr.write(f"meshctl check: {check:.3f}s, python -c pass: {bare:.3f}s, ratio {check / bare:.1f}\n")


def test_a_killed_proxy_fails_mc2003_and_fix_restarts_it(home: Path) -> None:
    pid = pid_of(home, "books-1", "proxy")
    kill(pid)
    code, document, stderr = check_json(home, "--proxy")
    assert code == 1 and document["success"] is False
    found = outcomes(document)
    assert found["MC2003"]["outcome"] == "failed"
    assert f"books-1: proxy (pid {pid}) is not running" in found["MC2003"]["reason"]
    assert found["MC8002"]["outcome"] == "failed" and "booksapp/books-1" in found["MC8002"]["reason"]
    assert "MC2003" in stderr

    dry = meshctl(home, "check", "--fix")
    assert dry.returncode == 1
    assert "restart the proxy of booksapp/books-1 (not running)" in dry.stdout and "dry run" in dry.stdout
    assert pid_of(home, "books-1", "proxy") == pid  # a dry run changes nothing

    repaired = fix(home)
    assert "books-1: proxy restarted" in repaired.stdout
    new_pid = pid_of(home, "books-1", "proxy")
    assert new_pid != pid and alive(new_pid)
    healthy(home, "--proxy")


def test_a_stopped_prometheus_fails_mc6001(home: Path) -> None:
    pid = pid_of(home, "prometheus-0", "prometheus")
    kill(pid, signal.SIGTERM)
    code, document, _ = check_json(home)
    assert code == 1
    found = outcomes(document)
    assert found["MC6001"]["outcome"] == "failed"
    assert f"prometheus-0: prometheus (pid {pid}) is not running" in found["MC6001"]["reason"]
    assert found["MC6002"]["outcome"] == "skipped" and found["MC6003"]["outcome"] == "skipped"
    assert found["MC2003"]["outcome"] == "passed"  # the rest of the mesh is unaffected
    fix(home)
    healthy(home)


def test_an_issuer_expiring_soon_warns_mc4008_exits_0_and_fix_reissues(home: Path) -> None:
    write_issuer(home, lifetime=timedelta(days=10), now=datetime.now(UTC) - timedelta(hours=1))
    code, document, _ = check_json(home)
    found = outcomes(document)
    assert found["MC4008"]["outcome"] == "warned"
    assert "expires in 9 days" in found["MC4008"]["reason"]
    assert found["MC5002"]["outcome"] == "warned"  # the control plane still signs with the previous issuer
    assert code == 0 and document["success"] is True  # warnings alone pass

    repaired = fix(home)
    assert "issued a new issuer" in repaired.stdout and "meshctl-control-0: control restarted" in repaired.stdout
    after = outcomes(healthy(home, "--proxy"))
    assert after["MC4008"]["outcome"] == "passed" and after["MC5002"]["outcome"] == "passed"


def test_an_expired_issuer_fails_mc4007(home: Path, identity: dict[str, bytes]) -> None:
    saved = {name: (home / "identity" / name).read_bytes() for name in identity}
    write_issuer(home, lifetime=timedelta(days=30), now=datetime.now(UTC) - timedelta(days=400))
    try:
        code, document, stderr = check_json(home)
        found = outcomes(document)
        assert code == 1 and "MC4007" in stderr
        assert found["MC4007"]["outcome"] == "failed" and "expired at" in found["MC4007"]["reason"]
        assert found["MC4008"]["outcome"] == "skipped"
    finally:
        restore_issuer(home, saved)
    healthy(home)


def test_an_issuer_not_signed_by_the_anchor_fails_mc4009(home: Path, identity: dict[str, bytes]) -> None:
    saved = {name: (home / "identity" / name).read_bytes() for name in identity}
    write_issuer(home, lifetime=timedelta(days=365), now=datetime.now(UTC), foreign=True)
    try:
        code, document, _ = check_json(home)
        found = outcomes(document)
        assert code == 1
        assert found["MC4009"]["outcome"] == "failed"
        assert "is not signed by a trust anchor" in found["MC4009"]["reason"]
        assert found["MC4007"]["outcome"] == "passed"
    finally:
        restore_issuer(home, saved)
    healthy(home)


def start_old_proxy(home: Path, pod: str) -> int:
    """Replace `pod`'s proxy by the same proxy reporting an older version, recorded in mesh.json."""
    from meshctl.platform.local import state
    from meshctl.platform.local.processes import spawn, stop_processes
    from meshctl.platform.local.state import Layout

    layout = Layout(home)
    code = (
        f"import meshctl; meshctl.__version__ = {OLD_VERSION!r}; import runpy; "
        "runpy.run_module('meshctl.proxy', run_name='__main__')"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with state.exclusive(layout, "test"):
        mesh = state.read_record(layout)
        assert mesh is not None
        component = mesh.component(pod)
        assert component is not None
        old = next(p for p in component.processes if p.role == "proxy")
        stop_processes([old], grace_s=10)
        argv = [sys.executable, "-c", code, "--config", str(layout.proxy_config(pod))]
        child, process = spawn("proxy", argv, layout.log(f"{pod}.proxy"), env=env)
        component.processes[component.processes.index(old)] = process
        state.write_record(layout, mesh)
    child.returncode = 0  # detached on purpose: the mesh owns it now (and `down` stops it)
    return process.pid


def test_a_proxy_of_another_version_fails_mc7002(home: Path) -> None:
    start_old_proxy(home, "books-0")

    def reports_old_version() -> dict[str, Any] | None:
        code, document, _ = check_json(home, "--proxy")
        found = outcomes(document)
        return document if code == 1 and found["MC7002"]["outcome"] == "failed" else None

    document = eventually(reports_old_version, 60, "MC7002 to fail")
    found = outcomes(document)
    assert f"booksapp/books-0 runs {OLD_VERSION}; the CLI is " in found["MC7002"]["reason"]
    assert found["MC8005"]["outcome"] == "failed"
    assert found["MC2003"]["outcome"] == "passed"

    repaired = fix(home)
    assert "restart the proxy of booksapp/books-0 (runs 0.0.1)" in repaired.stdout
    assert outcomes(healthy(home, "--proxy"))["MC7002"]["outcome"] == "passed"


def test_an_unreachable_platform_fails_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    done = meshctl(tmp_path / "nowhere", "check", timeout=30)
    assert done.returncode == 1 and "× the state directory exists and is readable" in done.stdout
    assert time.monotonic() - started < 30
