"""`up` in a home with a record: refuse while the mesh runs, replace the record when its processes died."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from meshctl.errors import ConflictError, ExitCode
from meshctl.platform.local import state
from meshctl.platform.local.processes import proc_stat, spawn
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord
from meshctl.platform.local.up import check_existing


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def note(self, message: str) -> None:
        self.lines.append(message)


def write(layout: Layout, processes: list[ProcessRecord]) -> None:
    control = ComponentRecord(
        name="meshctl-control-0",
        kind="control-plane",
        namespace="meshctl-system",
        deployment="meshctl-control",
        pod="meshctl-control-0",
        addresses={"api": "127.77.0.2:8086", "admin": "127.77.0.2:9996"},
        processes=processes,
    )
    record = MeshRecord("2026-01-02T03:04:05Z", 1, str(layout.home), "127.77.0.0/16", False, components=[control])
    state.write_record(layout, record)


def dead_process(tmp_path: Path) -> ProcessRecord:
    child, record = spawn("control", [sys.executable, "-c", "pass"], tmp_path / "dead.log")
    child.wait(10)
    return record


def test_no_record_is_a_fresh_start(tmp_path: Path) -> None:
    assert check_existing(Layout(tmp_path), Notes()) is False


def test_record_of_dead_processes_is_replaced(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    write(layout, [dead_process(tmp_path)])
    notes = Notes()
    assert check_existing(layout, notes) is True
    assert not layout.mesh_json.exists()
    assert any("stopped without `meshctl down`" in line for line in notes.lines)


def test_a_reused_pid_does_not_count_as_running(tmp_path: Path) -> None:
    stat = proc_stat(os.getpid())
    assert stat is not None
    layout = Layout(tmp_path)
    write(layout, [ProcessRecord("control", os.getpid(), stat.start_ticks + 1, "x.log", ["x"])])
    assert check_existing(layout, Notes()) is True


def test_a_running_mesh_is_a_conflict(tmp_path: Path) -> None:
    stat = proc_stat(os.getpid())
    assert stat is not None
    layout = Layout(tmp_path)
    write(layout, [ProcessRecord("control", os.getpid(), stat.start_ticks, "x.log", ["x"])])
    with pytest.raises(ConflictError) as caught:
        check_existing(layout, Notes())
    error = caught.value
    assert error.exit_code is ExitCode.CONFLICT
    assert "a mesh is already running (started 2026-01-02T03:04:05Z, pid" in error.message
    assert "meshctl down" in (error.hint or "")
    assert layout.mesh_json.exists()


def test_an_unreadable_record_is_replaced(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.mesh_json.write_text("{ not json")
    notes = Notes()
    assert check_existing(layout, notes) is True
    assert not layout.mesh_json.exists()
