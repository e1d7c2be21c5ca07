"""Processes of a benchmark run: started pinned to a core in their own session, waited for with bounds,
measured through /proc, and always stopped — on success, on error and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(RuntimeError):
    """A step of the benchmark could not be carried out; the message says which and why."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class Processes:
    """Starts processes and guarantees they are gone when the `with` block ends, however it ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self._old_handlers: dict[int, object] = {}

    def __enter__(self) -> Processes:
        # SIGTERM/SIGHUP unwind like Ctrl-C so the finally blocks run; children sit in their own sessions,
        # so a terminal's Ctrl-C reaches only us and we stop them in order.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        # A second Ctrl-C during cleanup must not leave processes behind: ignore it until we are done.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None = None,
        env: dict[str, str] | None = None,
        stdout: Path | None = None,
    ) -> Proc:
        """Start argv (pinned to `cpu` if given); stderr, and stdout unless redirected, go to its log."""
        cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + list(argv)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as err, (stdout or log).open("ab") as out:
            # taskset execs the command, so the pid is the process itself and /proc numbers are its own.
            popen = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace_s: float = 5.0) -> None:
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                print(f"bench: {proc.name} ignored SIGTERM for {grace_s:g} s; killing it", file=sys.stderr)
        # Whatever is left of its session (nginx workers, a stuck child) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace_s)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_bounded(procs: Processes, name: str, argv: Sequence[str], *, cpu: int | None, timeout_s: float) -> str:
    """Run a command to completion within timeout_s and return its stdout (stderr goes to its log)."""
    cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + list(argv)
    log = procs.log_dir / f"{name}.log"
    with log.open("ab") as err:
        popen = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
        proc = Proc(name, popen, log)
        procs.procs.append(proc)
        try:
            out, _ = popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{name} did not finish within {timeout_s:g} s") from exc
        finally:
            procs.stop(proc)
    return out.decode(errors="replace")


def wait_for(what: str, probe: Callable[[], bool], timeout_s: float, watch: Sequence[Proc] = ()) -> None:
    """Poll probe() until it returns True; fail early if a watched process exits, and after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        for proc in watch:
            if not proc.alive():
                raise BenchError(
                    f"{proc.name} exited with status {proc.popen.returncode} while waiting for {what}; "
                    f"last lines of {proc.log}:\n{proc.log_tail()}"
                )
        if probe():
            return
        if time.monotonic() > deadline:
            detail = "\n".join(f"--- {p.name} ({p.log}):\n{p.log_tail()}" for p in watch)
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}\n{detail}")
        time.sleep(0.1)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, host_header: str | None = None) -> bool:
    req = urllib.request.Request(url, headers={"Host": host_header} if host_header else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: shared pages (libraries) divided among the processes mapping them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the ")" ending the command name, utime and stime are the 12th and 13th fields.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK
