"""`check --fix` counts a restart only when the process it started serves.

The control plane of a recorded mesh is restarted with the real launcher (a real process). When its
address is taken, it exits at once: the remediation must fail, even though something else answers
/ready on its admin address, which is what a re-check would read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshctl.control.ca import ensure_identity_material
from meshctl.errors import MeshError
from meshctl.health.fix import Plan, Remediation, apply_plan
from meshctl.platform.local import fix as local_fix
from meshctl.platform.local import state
from meshctl.platform.local.fix import restart
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord
from tests.integration.local_mesh import free_subnet, subnet_host

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

POD = "meshctl-control-0"
DEAD_PID = 4_194_000  # above any pid_max default in use: never a live process


class AlwaysReady(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("content-length", "6")
        self.end_headers()
        self.wfile.write(b"ready\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    subnet = free_subnet()
    api, admin = f"{subnet_host(subnet, '0.2')}:8086", f"{subnet_host(subnet, '0.2')}:9996"
    layout = Layout(tmp_path / "home")
    layout.create()
    ensure_identity_material(layout.identity)
    control = {"listen": api, "admin": admin, "identity_dir": str(layout.identity), "config_dir": str(layout.config)}
    layout.control_json.write_text(json.dumps(control))
    record = MeshRecord(started_at="2030-01-01T00:00:00Z", up_pid=1, home=str(layout.home), subnet=subnet, demo=False)
    record.state = "running"
    dead = ProcessRecord("control", DEAD_PID, -1, str(layout.log("control")), ["/bin/false"])
    record.components = [
        ComponentRecord(POD, "control-plane", "meshctl-system", "meshctl-control", POD,
                        {"api": api, "admin": admin}, processes=[dead]),
    ]  # fmt: skip
    state.write_record(layout, record)
    yield layout
    record_now = state.read_record(layout)
    killed = {process.pid for process in (record_now.processes() if record_now else []) if process.pid != DEAD_PID}
    for pid in killed:
        with_suppressed_kill(pid)
    # restart() keeps the children it starts for the life of this process (they outlive a `check --fix`
    # command, as up's do): reap the ones killed here, or each stays a zombie and ends the test run with
    # "ResourceWarning: subprocess N is still running".
    for child in [child for child in local_fix._running if child.pid in killed]:
        child.wait(timeout=10)
        local_fix._running.remove(child)


def with_suppressed_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def addresses(layout: Layout) -> tuple[tuple[str, int], tuple[str, int]]:
    record = state.read_record(layout)
    assert record is not None
    component = record.component(POD)
    assert component is not None
    api_host, _, api_port = component.addresses["api"].rpartition(":")
    admin_host, _, admin_port = component.addresses["admin"].rpartition(":")
    return (api_host, int(api_port)), (admin_host, int(admin_port))


def test_a_restart_that_exits_at_once_is_a_failed_fix(layout: Layout) -> None:
    api, admin = addresses(layout)
    with socket.socket() as squatter:
        squatter.bind(api)
        squatter.listen()  # the control plane's API address is taken: it exits at start
        stray = ThreadingHTTPServer(admin, AlwaysReady)  # and something else answers /ready 200
        threading.Thread(target=stray.serve_forever, daemon=True).start()
        try:
            with pytest.raises(MeshError) as caught:
                restart(layout, POD, "control", canonical=True)
            remediation = Remediation(f"restart:{POD}:control", ("MC2001",), "restart the control plane",
                                      lambda: restart(layout, POD, "control", canonical=True))  # fmt: skip
            failures = apply_plan(Plan((remediation,), ()), lambda _r, _o: None)
        finally:
            stray.shutdown()
            stray.server_close()
    assert "control exited with code 5 right after the restart" in caught.value.message
    assert "address in use" in caught.value.message  # the reason, from its log
    assert caught.value.hint is not None and "control.log" in caught.value.hint
    assert len(failures) == 1 and "failed: control exited" in failures[0]


def test_a_restart_that_serves_is_confirmed(layout: Layout) -> None:
    _, admin = addresses(layout)
    done = restart(layout, POD, "control", canonical=True)
    assert f"listening on {admin[0]}:{admin[1]}" in done
