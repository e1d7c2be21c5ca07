"""Captures of a local instance's plaintext legs: which addresses they are, the BPF filter that selects
them on `lo`, and tcpdump started on them (or the capture a debug sidecar keeps, when the instance has one).

Every instance has its own loopback address; the hops in clear text are the inbound proxy → app one (to
the app's address) and the app → outbound proxy one (to the proxy's outbound address). Between proxies
the traffic is mTLS, so it is not captured: there is nothing to read in it.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from meshctl.debug.events import Leg
from meshctl.debug.sources import FollowSource, ProcessSource, Source
from meshctl.debug.tshark import INSTALL_HINT, find_tool
from meshctl.errors import MeshError, MeshTimeoutError
from meshctl.platform.local.addresses import split_hostport
from meshctl.platform.local.processes import is_alive
from meshctl.platform.local.state import ComponentRecord

DEVICE = "lo"
READY_MARK = "listening on"  # tcpdump's line once it captures
READY_S = 15.0
SIDECAR_ROLE = "debug"
PERMISSION_HINT = (
    "run it as root, or let tcpdump capture as you: `sudo setcap cap_net_raw,cap_net_admin=eip $(command -v tcpdump)`"
)


def legs_of(component: ComponentRecord) -> list[Leg]:
    """The plaintext legs of a workload (app and outbound) or of the ingress (its listener)."""
    legs = []
    protocol = "grpc" if component.protocol == "grpc" else "http"
    for role, direction in (("app", "inbound"), ("outbound", "outbound"), ("ingress", "inbound")):
        if role in component.addresses:
            host, port = split_hostport(component.addresses[role])
            # The app speaks its own protocol; the outbound proxy and the ingress take HTTP/1 from their clients.
            legs.append(Leg(component.pod, host, port, direction, protocol if role == "app" else "http"))
    return legs


def bpf(legs: list[Leg]) -> str:
    """Only the legs' packets, both ways: the server side's address and port on either end."""
    return "tcp and (" + " or ".join(f"(host {leg.host} and port {leg.port})" for leg in legs) + ")"


def capture_argv(tcpdump: str, legs: list[Leg], out: str = "-") -> list[str]:
    # -U: each packet is written at once (a follower or a pipe sees it now); -s 0: whole packets.
    return [tcpdump, "-i", DEVICE, "-U", "-n", "-s", "0", "-w", out, bpf(legs)]


def capture_failure(instance: str, stderr: str, code: int | None) -> MeshError:
    """Why tcpdump did not start, in one line with the fix."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit code {code}"
    if any(w in stderr for w in ("ermission", "Operation not permitted")):
        return MeshError(f"no permission to capture packets on {DEVICE} for {instance}: {last}",
                         hint=PERMISSION_HINT)  # fmt: skip
    return MeshError(f"the capture of {instance} did not start: {last}", hint=INSTALL_HINT)


class _Stderr:
    """tcpdump's stderr, read to its end on a thread; `ready` once it says it captures."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._read, name="debug-capture-stderr", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if READY_MARK in line:
                self.ready.set()
        self.done.set()

    def wait(self, timeout_s: float) -> bool:
        """True once capturing; False when tcpdump ended first (or the time ran out)."""
        waited = 0.0
        while waited < timeout_s:
            if self.ready.wait(0.05) or self.done.is_set():
                return self.ready.is_set()
            waited += 0.05
        return self.ready.is_set()


def start_capture(component: ComponentRecord, tcpdump: str) -> ProcessSource:
    legs = legs_of(component)
    process = subprocess.Popen(capture_argv(tcpdump, legs), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    stderr = _Stderr(process)
    if not stderr.wait(READY_S):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5.0)
            raise MeshTimeoutError(f"the capture of {component.pod} did not start within {READY_S:g}s",
                                   hint="the machine may be overloaded: try again")  # fmt: skip
        stderr.done.wait(2.0)
        raise capture_failure(component.pod, "".join(stderr.lines), process.returncode)
    return ProcessSource(component.pod, process, f"tcpdump pid {process.pid}")


def sidecar_pcap(home: Path, pod: str) -> Path:
    """Where an instance's debug sidecar writes its capture (beside the instance's other state)."""
    return home / "debug" / f"{pod}.pcap"


def running_sidecar(component: ComponentRecord) -> bool:
    return any(p.role == SIDECAR_ROLE and is_alive(p.pid, p.start_ticks) for p in component.processes)


def sources_for(home: Path, components: list[ComponentRecord]) -> tuple[list[Source], list[Leg]]:
    """A source per instance: its debug sidecar's capture when one runs, else a tcpdump started now. What
    was started is stopped again if a later instance cannot be captured."""
    tcpdump: str | None = None
    sources: list[Source] = []
    legs: list[Leg] = []
    try:
        for component in components:
            legs += legs_of(component)
            pcap = sidecar_pcap(home, component.pod)
            if running_sidecar(component) and pcap.exists():
                sources.append(FollowSource(component.pod, pcap, f"debug sidecar {pcap}"))
                continue
            tcpdump = tcpdump or find_tool("tcpdump")
            sources.append(start_capture(component, tcpdump))
    except BaseException:
        for source in sources:
            source.stop()
        raise
    return sources, legs
