"""mesh.json: round trip, unreadable files, atomic writes and the one-at-a-time lock."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from meshctl.errors import ConfigError, ConflictError, ExitCode
from meshctl.platform.local import state
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord


def record(home: Path) -> MeshRecord:
    return MeshRecord(
        started_at="2026-01-02T03:04:05Z",
        up_pid=42,
        home=str(home),
        subnet="127.77.0.0/16",
        demo=True,
        state="running",
        urls={"prometheus": "http://127.77.0.3:9090"},
        components=[
            ComponentRecord(
                name="books-0",
                kind="workload",
                namespace="booksapp",
                deployment="books",
                pod="books-0",
                addresses={"app": "127.77.3.1:7002", "admin": "127.77.3.1:4191"},
                identity="books.booksapp.serviceaccount.identity.meshctl.cluster.local",
                service="books",
                service_port=7002,
                protocol="http",
                processes=[
                    ProcessRecord("app", 100, 5, "/l/books-0.log", ["python", "-m", "meshctl.demo"]),
                    ProcessRecord("proxy", 101, 6, "/l/books-0.proxy.log", ["python", "-m", "meshctl.proxy"]),
                ],
            )
        ],
    )


def test_record_round_trips(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    original = record(tmp_path)
    state.write_record(layout, original)
    assert state.read_record(layout) == original
    assert [p.pid for p in original.processes()] == [100, 101]
    assert original.component("books-0") is not None and original.component("nope") is None


def test_missing_record_is_none(tmp_path: Path) -> None:
    assert state.read_record(Layout(tmp_path)) is None


@pytest.mark.parametrize("text", ["{", "[]", '{"version": 99}', '{"version": 1, "bogus": 1}'])
def test_unreadable_record_is_a_config_error(tmp_path: Path, text: str) -> None:
    layout = Layout(tmp_path)
    layout.mesh_json.write_text(text)
    with pytest.raises(ConfigError, match="mesh.json"):
        state.read_record(layout)


def test_write_atomic_sets_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    state.write_atomic(target, "x", mode=0o600)
    state.write_atomic(target, "y", mode=0o600)
    assert target.read_text() == "y"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_layout_creates_private_directories(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    layout.create()
    for name in ("config", "proxies", "logs", "prometheus"):
        assert (layout.home / name).is_dir()
    assert stat.S_IMODE(layout.identity.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.tokens.stat().st_mode) == 0o700
    assert layout.log("books-0.proxy") == layout.home / "logs" / "books-0.proxy.log"


def test_only_one_up_or_down_at_a_time(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with state.exclusive(layout, "up"):
        with pytest.raises(ConflictError) as caught, state.exclusive(layout, "down"):
            pass
        assert caught.value.exit_code is ExitCode.CONFLICT
    with state.exclusive(layout, "down"):  # released again
        pass
