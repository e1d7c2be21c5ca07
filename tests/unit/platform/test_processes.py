"""Process inspection from /proc, and stopping whole process groups."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from meshctl.platform.local import processes
from meshctl.platform.local.processes import (
    group_members,
    is_alive,
    log_tail,
    proc_stat,
    spawn,
    stop_processes,
)


def fake_stat(proc: Path, pid: int, comm: str, state: str, pgid: int, start: int) -> None:
    fields = [state, "1", str(pgid), str(pgid)] + ["0"] * 15 + [str(start)] + ["0"] * 10
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")


def test_stat_parsing_survives_odd_command_names(tmp_path: Path) -> None:
    fake_stat(tmp_path, 7, "we ird) (name", "S", 7, 12345)
    stat = proc_stat(7, tmp_path)
    assert stat == processes.ProcStat(state="S", pgid=7, start_ticks=12345)


def test_liveness_needs_the_same_start_time_and_no_zombie(tmp_path: Path) -> None:
    fake_stat(tmp_path, 7, "python", "S", 7, 100)
    fake_stat(tmp_path, 8, "python", "Z", 8, 100)
    assert is_alive(7, 100, tmp_path)
    assert not is_alive(7, 101, tmp_path)  # the pid was reused by another process
    assert not is_alive(8, 100, tmp_path)  # a zombie has exited
    assert not is_alive(9, 100, tmp_path)  # gone


def test_group_members_ignores_zombies_and_other_groups(tmp_path: Path) -> None:
    fake_stat(tmp_path, 10, "leader", "S", 10, 1)
    fake_stat(tmp_path, 11, "child", "S", 10, 2)
    fake_stat(tmp_path, 12, "dead", "Z", 10, 3)
    fake_stat(tmp_path, 13, "other", "S", 13, 4)
    (tmp_path / "self").mkdir()
    assert group_members([10], tmp_path) == {10: [10, 11]}


def test_this_process_is_alive() -> None:
    stat = proc_stat(os.getpid())
    assert stat is not None and is_alive(os.getpid(), stat.start_ticks)


def test_spawn_records_and_stop_stops_the_whole_group(tmp_path: Path) -> None:
    # The child forks a grandchild in the same group: stopping the group must stop both.
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    child, record = spawn("app", [sys.executable, "-c", script], tmp_path / "app.log")
    try:
        assert record.pid == child.pid and is_alive(record.pid, record.start_ticks)
        deadline = time.monotonic() + 10
        while len(group_members([child.pid]).get(child.pid, [])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(group_members([child.pid])[child.pid]) == 2
        assert os.getpgid(child.pid) == child.pid  # its own session and group
        assert stop_processes([record], grace_s=5.0) == []
        assert group_members([child.pid]) == {}
    finally:
        child.kill()
        child.wait(5)
    assert "meshctl up:" in (tmp_path / "app.log").read_text()


def test_a_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('READY'.lower(), flush=True)\n"  # the log's header holds the argv: not 'ready' itself
        "time.sleep(60)\n"
    )
    child, record = spawn("app", [sys.executable, "-c", script], tmp_path / "stubborn.log")
    try:
        deadline = time.monotonic() + 10
        while "ready" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed: list[int] = []
        assert stop_processes([record], grace_s=0.3, on_kill=lambda r: killed.append(r.pid)) == []
        assert killed == [child.pid]
    finally:
        child.kill()
        child.wait(5)


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    child, record = spawn("app", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "x.log")
    try:
        record.start_ticks += 1  # as if the pid now belonged to another process
        assert stop_processes([record], grace_s=0.2) == []
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(5)


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 2) == "line 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == ""


def test_log_tail_shows_only_the_last_run(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("--- t1 meshctl up: a\nold failure\n--- t2 meshctl up: b\nnew failure\n")
    assert log_tail(log) == "new failure"
