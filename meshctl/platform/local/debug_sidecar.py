"""`meshctl up --enable-debug-sidecar deploy/books`: instances that start with their capture running, as
Linkerd's debug-sidecar annotation does at pod creation.

The sidecar is a tcpdump of the instance's plaintext legs (see debug_capture.py) started before the app,
writing to `<home>/debug/<pod>.pcap` (its diagnostics to `logs/<pod>.debug.log`). It is a process of the
instance in mesh.json (role "debug"), so `status` shows it, `down` stops it, and `meshctl debug` follows
its file instead of starting a capture of its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from meshctl.debug.tshark import find_tool
from meshctl.errors import UsageError
from meshctl.platform.base import ProxyInfo, select
from meshctl.platform.local.debug_capture import READY_MARK, SIDECAR_ROLE, capture_argv, legs_of, sidecar_pcap
from meshctl.platform.local.processes import proc_stat
from meshctl.platform.local.state import ComponentRecord, Layout, ProcessRecord
from meshctl.platform.local.topology import Topology
from meshctl.targets import parse_target


def chosen(topology: Topology, targets: tuple[str, ...]) -> frozenset[str]:
    """The pods the targets name among the demo's workloads; refused before anything starts when a target
    names none, or when tcpdump is missing."""
    if not targets:
        return frozenset()
    pods = [ProxyInfo(p.pod, p.namespace, p.deployment, p.admin, p.identity, "sidecar", p.service)
            for p in topology.workloads]  # fmt: skip
    found: set[str] = set()
    for text in targets:
        matched = select(pods, parse_target(text, topology.namespace))
        if not matched:
            names = ", ".join(sorted({p.deployment for p in pods})) or "none (--no-demo)"
            raise UsageError(f"--enable-debug-sidecar {text}: no instance of the mesh matches it",
                             hint=f"name a deployment of namespace {topology.namespace}: {names}")  # fmt: skip
        found.update(p.pod for p in matched)
    find_tool("tcpdump")
    return frozenset(found)


def log_path(layout: Layout, pod: str) -> Path:
    return layout.log(f"{pod}.debug")


def start(layout: Layout, component: ComponentRecord) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start the capture; it writes the pcap itself (on its stdout, a file opened here) from the first packet."""
    pcap, log = sidecar_pcap(layout.home, component.pod), log_path(layout, component.pod)
    pcap.parent.mkdir(parents=True, exist_ok=True)
    argv = capture_argv(find_tool("tcpdump"), legs_of(component))
    with pcap.open("wb") as out, log.open("wb") as err:  # a new capture per run of the mesh
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                                 close_fds=True, cwd=layout.home)  # fmt: skip
    stat = proc_stat(child.pid)
    ticks = stat.start_ticks if stat is not None else -1
    return child, ProcessRecord(role=SIDECAR_ROLE, pid=child.pid, start_ticks=ticks, log=str(log), argv=argv)


def ready(log: str) -> bool:
    """tcpdump says so once it captures."""
    try:
        return READY_MARK in Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
