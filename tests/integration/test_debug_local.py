"""`meshctl debug` on a real local mesh: known requests with a unique path are shown live and are in the
pcap `tshark -r` reads, Ctrl-C ends it cleanly, instances started with `up --enable-debug-sidecar` are
captured from the start and followed, `down` stops their sidecars, and each failure is one line with a hint.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from meshctl.platform.local.processes import proc_stat
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord, write_record
from tests.integration.local_mesh import (
    UP_TIMEOUT_S,
    alive,
    free_subnet,
    http_request,
    meshctl,
    status_json,
    subnet_host,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TSHARK = shutil.which("tshark") or "tshark"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("debug") / "home"
    subnet = free_subnet()
    # No traffic generator: what the captures see is what the tests send.
    up = meshctl(home, "up", "--subnet", subnet, "--rps", "0", "--enable-debug-sidecar", "deploy/books",
                 timeout=UP_TIMEOUT_S)  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "debug sidecar books-0 ready" in up.stderr
    try:
        yield home, subnet
    finally:
        meshctl(home, "down")


class Running:
    """`meshctl debug` as a user runs it in a terminal: its lines as they come, then Ctrl-C."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "MESHCTL_HOME": str(home)}
        self.process = subprocess.Popen([sys.executable, "-m", "meshctl", "debug", *args], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, into in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, into), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str] | None, into: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            into.put(line)

    def wait_for(self, what: str, stream: str, within_s: float = 60.0) -> str:
        source, seen = (self.out, self.stdout) if stream == "out" else (self.err, self.stderr)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                line = source.get(timeout=0.2)
            except queue.Empty:
                assert self.process.poll() is None or not source.empty(), f"exited: {''.join(self.stderr)}"
                continue
            seen.append(line)
            if what in line:
                return line
        raise AssertionError(f"{what!r} not on std{stream} within {within_s:g}s: {''.join(seen)}")

    def finish(self, timeout_s: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout_s)
        time.sleep(0.2)  # the pumps read to the end
        for source, seen in ((self.out, self.stdout), (self.err, self.stderr)):
            while not source.empty():
                seen.append(source.get())
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


def pcap_paths(path: Path, marker: str, *ports: int) -> list[str]:
    """The request paths holding `marker` that `tshark -r` finds in a capture."""
    decode = [arg for port in ports for arg in ("-d", f"tcp.port=={port},http")]
    done = subprocess.run([TSHARK, "-r", str(path), "-n", *decode, "-Y", f'http.request.uri contains "{marker}"',
                           "-T", "fields", "-e", "http.request.uri"], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode in (0, 2), done.stderr  # 2: a file still being written ends mid-packet
    return done.stdout.split()


def test_requests_are_shown_live_and_saved_then_ctrl_c_ends_cleanly(mesh: tuple[Path, str], tmp_path: Path) -> None:
    home, subnet = mesh
    marker = f"debug-{uuid.uuid4().hex[:12]}"
    capture = tmp_path / "capture.pcap"
    debug = Running(home, "deploy/webapp", "-n", "booksapp", "--write", str(capture), "-o", "json")
    try:
        debug.wait_for("capturing 4 plaintext legs of 2 instances until Ctrl-C", "err")
        ingress = f"http://{subnet_host(subnet, '0.4')}:8080"
        for n in range(3):
            http_request(f"{ingress}/{marker}/{n}")
        responses: set[str] = set()
        while len(responses) < 3:  # each request through the ingress reaches one webapp instance's app
            event = json.loads(debug.wait_for(marker, "out"))
            assert event["instance"] in ("webapp-0", "webapp-1") and event["direction"] == "inbound"
            if event["kind"] == "response":
                assert event["method"] == "GET" and isinstance(event["status"], int)
                responses.add(event["path"])
        assert responses == {f"/{marker}/{n}" for n in range(3)}
        pids = [int(line.rsplit(" ", 1)[1]) for line in debug.stderr if "tcpdump pid" in line]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    finally:
        debug.process.send_signal(signal.SIGINT)
    assert debug.finish() == 0, "".join(debug.stderr)
    summary = debug.stderr[-1]
    assert "from 2 instances" in summary and f"packets in {capture}" in summary, summary
    assert sorted(pcap_paths(capture, marker, 7000)) == [f"/{marker}/{n}" for n in range(3)]
    assert not any(alive(pid) for pid in pids), "the captures stop with the command"
    assert "Traceback" not in "".join(debug.stderr)


def test_a_debug_sidecar_captures_from_the_start_and_is_followed(mesh: tuple[Path, str], tmp_path: Path) -> None:
    home, subnet = mesh
    _, status = status_json(home)
    books = next(c for c in status["components"] if c["pod"] == "books-0")
    (sidecar,) = [p for p in books["processes"] if p["role"] == "debug"]
    assert sidecar["alive"] and books["status"] == "running"
    own_pcap = home / "debug" / "books-0.pcap"
    assert own_pcap.is_file()

    marker = f"sidecar-{uuid.uuid4().hex[:12]}"
    capture = tmp_path / "books.pcap"
    debug = Running(home, "pod/books-0", "-n", "booksapp", "--duration", "8s", "--write", str(capture))
    debug.wait_for(f"books-0: debug sidecar {own_pcap}", "err")
    debug.wait_for("capturing 2 plaintext legs of 1 instance for 8s", "err")
    app = f"http://{subnet_host(subnet, '3.1')}:7002"  # books-0's app: its inbound leg's address
    http_request(f"{app}/{marker}")
    line = debug.wait_for(marker, "out")
    assert line.startswith("req pod=books-0 leg=in ") and f":path=/{marker}" in line
    assert debug.finish() == 0, "".join(debug.stderr)
    assert any(f":status=404 :method=GET :path=/{marker}" in ln for ln in debug.stdout), debug.stdout
    assert pcap_paths(capture, marker, 7002) == [f"/{marker}"]
    assert pcap_paths(own_pcap, marker, 7002) == [f"/{marker}"]  # the sidecar's own capture has it too


def test_failures_are_one_line_with_a_hint(mesh: tuple[Path, str], tmp_path: Path) -> None:
    home, _ = mesh
    done = meshctl(home, "debug", "deploy/nope", "-n", "booksapp")
    assert done.returncode == 2 and "no meshed pod matches deploy/nope" in done.stderr
    done = meshctl(home, "debug", "deploy/webapp", "-n", "booksapp", "--filter", "http.request.method ==")
    assert done.returncode == 2 and "--filter" in done.stderr and "hint: " in done.stderr
    done = meshctl(home, "debug", "deploy/webapp", "-n", "booksapp", "--write", str(tmp_path / "no" / "x.pcap"))
    assert done.returncode == 2 and "No such file or directory" in done.stderr and "hint: " in done.stderr
    done = meshctl(home, "debug", "deploy/webapp", "-n", "booksapp", "-o", "wide")
    assert done.returncode == 2 and "text or json" in done.stderr
    done = meshctl(tmp_path / "empty", "debug", "deploy/webapp", "-n", "booksapp")
    assert done.returncode == 3 and "no mesh is running" in done.stderr
    done = meshctl(tmp_path / "other", "up", "--subnet", "127.78.0.0/16", "--enable-debug-sidecar", "deploy/nope")
    assert done.returncode == 2 and "--enable-debug-sidecar deploy/nope: no instance" in done.stderr
    assert "books" in done.stderr and not (tmp_path / "other" / "mesh.json").exists()  # refused before starting
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "MESHCTL_HOME": str(home), "PATH": str(empty)}
    done = subprocess.run([sys.executable, "-m", "meshctl", "debug", "deploy/webapp", "-n", "booksapp"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and "tshark is not installed" in done.stderr
    assert "hint: install them: `apt-get install -y tshark tcpdump`" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 2


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="drops from root to nobody")
def test_no_permission_to_capture_is_named_with_the_fix(tmp_path: Path) -> None:
    # A mesh record owned by an unprivileged user, whose one instance is this (live) test process.
    # pytest's tmp_path is private to root: this home is where nobody can reach it.
    home = Path(tmp_path_root := "/tmp") / f"meshctl-debug-perm-{uuid.uuid4().hex[:8]}"
    home.mkdir(mode=0o755)
    try:
        stat = proc_stat(os.getpid())
        assert stat is not None
        process = ProcessRecord("app", os.getpid(), stat.start_ticks, str(home / "app.log"), ["pytest"])
        addresses = {"app": "127.79.3.1:7002", "outbound": "127.79.3.1:4140", "admin": "127.79.3.1:4191"}
        component = ComponentRecord("books-0", "workload", "booksapp", "books", "books-0", addresses,
                                    protocol="http", processes=[process])  # fmt: skip
        write_record(Layout(home), MeshRecord("2026-01-01T00:00:00Z", os.getpid(), str(home), "127.79.0.0/16", True,
                                              state="running", components=[component]))  # fmt: skip
        for path in (home, home / "mesh.json"):
            os.chown(path, 65534, 65534)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
        argv = [*nobody, sys.executable, "-m", "meshctl", "debug", "pod/books-0", "-n", "booksapp", "--home", str(home)]
        env = {**os.environ, "HOME": tmp_path_root}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1, done.stderr
        first, hint = done.stderr.strip().splitlines()[-2:]
        assert "no permission to capture packets on lo for books-0" in first
        assert hint.startswith("hint: ") and "setcap cap_net_raw,cap_net_admin=eip" in hint
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_an_instance_whose_sidecar_died_gets_a_capture_of_its_own(mesh: tuple[Path, str]) -> None:
    home, _ = mesh
    _, status = status_json(home)
    books = next(c for c in status["components"] if c["pod"] == "books-1")
    (sidecar,) = [p["pid"] for p in books["processes"] if p["role"] == "debug"]
    os.kill(sidecar, signal.SIGTERM)  # the sidecar `up` started for this test's mesh
    deadline = time.monotonic() + 10
    while alive(sidecar) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = meshctl(home, "debug", "pod/books-1", "-n", "booksapp", "--duration", "1s")
    assert done.returncode == 0, done.stderr
    assert "debug: books-1: tcpdump pid" in done.stderr and "not running" not in done.stderr


def test_down_stops_the_sidecars(mesh: tuple[Path, str]) -> None:
    home, _ = mesh
    _, status = status_json(home)
    pids = [p["pid"] for c in status["components"] for p in c["processes"] if p["role"] == "debug" and p["alive"]]
    assert len(pids) == 1  # books-0's (books-1's was stopped above)
    done = meshctl(home, "down")
    assert done.returncode == 0, done.stderr
    assert not any(alive(pid) for pid in pids)
