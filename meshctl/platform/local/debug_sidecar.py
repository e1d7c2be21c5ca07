"""`meshctl up --enable-debug-sidecar deploy/books`: instances that start with their capture running, as
Linkerd's debug-sidecar annotation does at pod creation.

The sidecar is a tcpdump of the instance's plaintext legs (see debug_capture.py) started before the app,
writing `<home>/debug/<pod>.pcap` (a new one each run; its diagnostics go to `logs/<pod>.debug.log`). It
is a process of the instance in mesh.json (role "debug"), so `status` shows it, `down` stops it, and
`meshctl debug` follows its file instead of starting a capture of its own.
"""

from __future__ import annotations

from meshctl.debug.tshark import find_tool
from meshctl.errors import UsageError
from meshctl.platform.base import ProxyInfo, select
from meshctl.platform.local.debug_capture import READY_MARK, SIDECAR_ROLE, capture_argv, legs_of, sidecar_pcap
from meshctl.platform.local.processes import log_tail
from meshctl.platform.local.state import ComponentRecord, Layout
from meshctl.platform.local.topology import Topology
from meshctl.targets import parse_target

ROLE = SIDECAR_ROLE  # its process's role in mesh.json


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


def argv(layout: Layout, component: ComponentRecord) -> list[str]:
    """tcpdump writing the pcap itself: the command line alone restarts the sidecar (`check --fix` does)."""
    pcap = sidecar_pcap(layout.home, component.pod)
    pcap.parent.mkdir(parents=True, exist_ok=True)
    return capture_argv(find_tool("tcpdump"), legs_of(component), str(pcap))


def ready(log: str) -> bool:
    """tcpdump says so once it captures (in this run's part of its log)."""
    return READY_MARK in log_tail(log, lines=50)
