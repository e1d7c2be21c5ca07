"""`meshctl log-level` against real admin endpoints (the proxy's own admin server and app) named by a local
mesh.json: every instance read and changed, a bad level refused before any instance is asked, a proxy that
is down named, and `--for` undone by the proxies themselves after the CLI has exited."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from meshctl.logs import format_level_spec, parse_level_spec
from meshctl.metrics.admin import listen_address, start_admin_server, stop_admin_server
from meshctl.metrics.adminapp import AdminApp
from meshctl.metrics.registry import ProxyMetrics
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, write_record
from tests.integration.tap_fleet import closed_port

pytestmark = pytest.mark.integration
NS = "booksapp"


class Levels:
    """One proxy's level, as the proxy keeps it (its parser, its canonical text)."""

    def __init__(self) -> None:
        self.current = "info"

    def get(self) -> str:
        return self.current

    def set(self, spec: str) -> None:
        self.current = format_level_spec(*parse_level_spec(spec))


class Proxies:
    def __init__(self, home: Path) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.levels = {f"books-{n}": Levels() for n in range(2)}
        self.servers: list[asyncio.AbstractServer] = []
        addresses: dict[str, str] = {}
        for pod, levels in self.levels.items():
            app = AdminApp(metrics=ProxyMetrics(), ready=lambda: True, get_log_level=levels.get,
                           set_log_level=levels.set, config_dump=lambda: {"config": {"log_level": "info"}})  # fmt: skip
            server = asyncio.run_coroutine_threadsafe(start_admin_server("127.0.0.1", 0, app), self.loop).result(10)
            host, port = listen_address(server)
            self.servers.append(server)
            addresses[pod] = f"{host}:{port}"
        addresses["books-2"] = f"127.0.0.1:{closed_port()}"  # a proxy that is down
        components = [
            ComponentRecord(name=pod, kind="workload", namespace=NS, deployment="books", pod=pod,
                            addresses={"admin": address}, identity=f"books.{NS}.serviceaccount.identity.x",
                            service="books", service_port=7002)
            for pod, address in addresses.items()
        ]  # fmt: skip
        record = MeshRecord(started_at="2026-11-29T06:00:00Z", up_pid=1, home=str(home), subnet="127.0.0.0/8",
                            demo=True, state="running", components=components)  # fmt: skip
        layout = Layout(home)
        layout.create()
        write_record(layout, record)

    def close(self) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(stop_admin_server(server), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[tuple[Path, Proxies]]:
    home = tmp_path / "home"
    running = Proxies(home)
    yield home, running
    running.close()


def meshctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHCTL_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def test_every_instance_is_read_and_the_one_that_is_down_is_named(proxies: tuple[Path, Proxies]) -> None:
    home, _ = proxies
    done = meshctl(home, "log-level", "deploy/books", "-n", NS)
    assert done.returncode == 1
    assert "books-0: info\nbooks-1: info\n" in done.stdout
    assert "books-2: " in done.stdout and "books-2" in done.stderr


def test_a_bad_level_changes_nothing_anywhere(proxies: tuple[Path, Proxies]) -> None:
    home, running = proxies
    done = meshctl(home, "log-level", "deploy/books", "-n", NS, "info,meshctl.proxy=chatty")
    assert done.returncode == 2 and "unknown log level 'chatty'" in done.stderr and done.stdout == ""
    assert {levels.current for levels in running.levels.values()} == {"info"}


def test_for_is_undone_by_the_proxies_after_the_cli_has_gone(proxies: tuple[Path, Proxies]) -> None:
    home, running = proxies
    done = meshctl(home, "log-level", "pod/books-0", "-n", NS, "warn,meshctl.proxy=debug", "--for", "1s", "-o", "json")
    assert done.returncode == 0, done.stderr
    (changed,) = json.loads(done.stdout)["proxies"]
    assert changed == {"instance": "books-0", "before": "info", "after": "warn,meshctl.proxy=debug",
                       "revert_after_s": 1.0, "error": None}  # fmt: skip
    assert running.levels["books-1"].current == "info"  # only the pod named
    deadline = time.monotonic() + 10
    while running.levels["books-0"].current != "info" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.levels["books-0"].current == "info"
    reset = meshctl(home, "log-level", "pod/books-1", "-n", NS, "--reset")
    assert reset.returncode == 0 and reset.stdout == "books-1: info (unchanged)\n"
