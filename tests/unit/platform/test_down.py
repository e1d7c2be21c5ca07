"""`down` and `--purge`: stop what the record lists, remove only a meshctl state directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meshctl.errors import UsageError
from meshctl.platform.local import state
from meshctl.platform.local.down import check_purgeable, down, purge_home
from meshctl.platform.local.processes import is_alive, spawn
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord


def test_down_without_a_home_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "never-used"
    result = down(Layout(home))
    assert not result.was_running and result.stopped == 0
    assert not home.exists()


def test_down_stops_the_recorded_processes_and_keeps_files(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    (layout.identity / "ca.pem").write_text("anchor")
    children = []
    record = MeshRecord("2026-01-02T03:04:05Z", 1, str(tmp_path), "127.77.0.0/16", True, state="running")
    for role in ("traffic", "proxy"):
        child, process = spawn(role, [sys.executable, "-c", "import time; time.sleep(60)"], layout.log(role))
        children.append(child)
        record.components.append(
            ComponentRecord(f"{role}-0", role, "booksapp", role, f"{role}-0", {}, processes=[process])
        )
    state.write_record(layout, record)
    try:
        result = down(layout, grace_s=5.0)
    finally:
        for child in children:
            child.kill()
            child.wait(5)
    assert result.was_running and result.stopped == 2 and result.killed == []
    assert not any(is_alive(p.pid, p.start_ticks) for p in record.processes())
    assert not layout.mesh_json.exists()
    assert (layout.identity / "ca.pem").read_text() == "anchor" and layout.log("proxy").exists()


def test_purge_refuses_what_is_not_a_state_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="refusing"):
        check_purgeable(Path("/"))
    with pytest.raises(UsageError, match="refusing"):
        check_purgeable(Path.home())
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(UsageError, match="does not look like"):
        check_purgeable(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_purge_removes_a_state_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Layout(home).create()
    assert purge_home(home) is True
    assert not home.exists()
    assert purge_home(home) is False
