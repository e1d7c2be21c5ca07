"""`meshctl down`: stop every process the mesh record lists, leave no process behind, keep the files.

The traffic generator stops first (no new requests), then everything else at once: SIGTERM to each
process group, a grace period for proxies to drain, SIGKILL for what remains. Only `--purge` removes
the state directory.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from meshctl.errors import ConfigError, MeshError, UsageError
from meshctl.platform.local import state
from meshctl.platform.local.processes import is_alive, stop_processes
from meshctl.platform.local.state import Layout, ProcessRecord

GRACE_S = 10.0
TRAFFIC_GRACE_S = 3.0
# Entries only meshctl creates: a directory holding none of them is not a mesh home and is never purged.
_HOME_MARKERS = ("mesh.json", ".lock", "identity", "config", "logs", "proxies", "control.json", "prometheus")


@dataclass(frozen=True)
class DownResult:
    was_running: bool
    stopped: int  # processes that were alive and are now stopped
    killed: list[str]  # "role pid" of those that needed SIGKILL
    elapsed_s: float


def down(layout: Layout, *, grace_s: float = GRACE_S) -> DownResult:
    t0 = time.monotonic()
    state.check_home(layout.home, writing=True)
    if not layout.home.is_dir():
        return DownResult(False, 0, [], 0.0)
    with state.exclusive(layout, "down"):
        try:
            record = state.read_record(layout)
        except ConfigError as exc:
            raise MeshError(
                f"{exc.message}: cannot tell which processes belong to the mesh",
                hint=f"stop them by hand, then remove {layout.mesh_json}",
            ) from None
        if record is None:
            return DownResult(False, 0, [], time.monotonic() - t0)
        processes = record.processes()
        alive = sum(1 for p in processes if is_alive(p.pid, p.start_ticks))
        killed: list[str] = []

        def note_kill(p: ProcessRecord) -> None:
            killed.append(f"{p.role} {p.pid}")

        traffic = [p for p in processes if p.role == "traffic"]
        others = [p for p in processes if p.role != "traffic"]
        left = stop_processes(traffic, grace_s=TRAFFIC_GRACE_S, on_kill=note_kill)
        left += stop_processes(others, grace_s=grace_s, on_kill=note_kill)
        if left:
            raise MeshError(
                f"processes of the mesh survived SIGKILL: {', '.join(map(str, left))}",
                hint="they may be stuck in the kernel (state D); check `ps -o pid,stat,cmd -p PID`",
            )
        state.remove_record(layout)
        return DownResult(True, alive, killed, time.monotonic() - t0)


def check_purgeable(home: Path) -> None:
    """Refuse to purge anything that is not clearly a meshctl state directory."""
    resolved = home.resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise UsageError(f"refusing to remove {resolved}", hint="--purge removes the state directory only")
    if resolved.exists() and not any((resolved / m).exists() for m in _HOME_MARKERS):
        raise UsageError(
            f"{resolved} does not look like a meshctl state directory; not removing it",
            hint="check --home / MESHCTL_HOME",
        )


def purge_home(home: Path) -> bool:
    """Remove the state directory (after `down`); False when there was none."""
    if not home.exists():
        return False
    check_purgeable(home)
    shutil.rmtree(home)
    return True
