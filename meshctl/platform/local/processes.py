"""Starting, inspecting and stopping the mesh's processes.

Each process starts in its own session, so it leads its own process group: stopping the group stops
anything it forked too, and a Ctrl-C in the terminal that ran `meshctl up` does not reach the mesh.
Liveness comes from /proc: a pid counts as ours only while its start time matches the one recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from meshctl.platform.local.state import ProcessRecord

PROC = Path("/proc")
LOG_ROTATE_BYTES = 20 * 1024 * 1024
_HEADER = " meshctl up: "  # starts each run's part of a log


@dataclass(frozen=True)
class ProcStat:
    state: str  # R, S, D, Z (zombie), X (dead) ...
    pgid: int
    start_ticks: int


def proc_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(state=fields[0], pgid=int(fields[2]), start_ticks=int(fields[19]))
    except (IndexError, ValueError):
        return None


def is_alive(pid: int, start_ticks: int, proc: Path = PROC) -> bool:
    """True while the process we started runs (zombies and reused pids count as gone)."""
    stat = proc_stat(pid, proc)
    return stat is not None and stat.state not in ("Z", "X") and stat.start_ticks == start_ticks


def group_members(pgids: Iterable[int], proc: Path = PROC) -> dict[int, list[int]]:
    """Live (non-zombie) processes of each process group, by scanning /proc."""
    wanted = set(pgids)
    found: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name), proc)
        if stat is not None and stat.pgid in wanted and stat.state not in ("Z", "X"):
            found.setdefault(stat.pgid, []).append(int(entry.name))
    for pids in found.values():
        pids.sort()
    return found


def _rotate(log: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))


def spawn(
    role: str, argv: list[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start one process of the mesh, stdout and stderr appended to its log."""
    _rotate(log)
    with log.open("ab") as out:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out.write(f"--- {stamp}{_HEADER}{' '.join(argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    stat = proc_stat(child.pid)
    # The child may already have exited: a start time of -1 then never matches, so it reads as dead.
    ticks = stat.start_ticks if stat is not None else -1
    return child, ProcessRecord(role=role, pid=child.pid, start_ticks=ticks, log=str(log), argv=argv)


def _ours(record: ProcessRecord) -> bool:
    """False when the pid now belongs to another process: then its group is not ours either.

    A gone leader may have left members in its group; the group id cannot be reused while they live.
    """
    stat = proc_stat(record.pid)
    return stat is None or stat.start_ticks == record.start_ticks


def _signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    if not _ours(record):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, sig)


def stop_processes(
    records: list[ProcessRecord],
    *,
    grace_s: float,
    on_kill: Callable[[ProcessRecord], None] | None = None,
    poll_s: float = 0.05,
) -> list[int]:
    """SIGTERM every group, wait up to grace_s, SIGKILL what remains; return pids still alive after that."""
    records = [r for r in records if _ours(r)]
    for record in records:
        _signal_group(record, signal.SIGTERM)
    pgids = {r.pid for r in records}
    deadline = time.monotonic() + grace_s
    remaining = group_members(pgids)
    while remaining and time.monotonic() < deadline:
        time.sleep(poll_s)
        remaining = group_members(pgids)
    if remaining:
        for record in records:
            if record.pid in remaining:
                if on_kill is not None:
                    on_kill(record)
                _signal_group(record, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while remaining and time.monotonic() < deadline:
            time.sleep(poll_s)
            remaining = group_members(pgids)
    return sorted(pid for pids in remaining.values() for pid in pids)


def log_tail(path: str | Path, lines: int = 8) -> str:
    """The last lines of a log, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # Only this run: the log keeps earlier runs above the header `spawn` wrote.
    header = data.rfind(_HEADER)
    if header >= 0:
        data = data[data.find("\n", header) + 1 :]
    return "\n".join(data.strip().splitlines()[-lines:])
