"""`meshctl status` on Kubernetes: the control plane's deployments, then every meshed pod with its
containers' readiness, as `kubectl get pods` shows them. Built from the one pod listing of
`KubernetesPlatform.status()` (the deployments are the control-plane pods grouped by deployment), so the
command costs one API request however large the cluster.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from meshctl.cli.style import Palette, Tone
from meshctl.platform.kubernetes.conventions import CONTROL_NS, VERSION_LABEL

if TYPE_CHECKING:
    from meshctl.platform.base import MeshStatus
    from meshctl.platform.kubernetes.pods import Pod

def _pods(status: MeshStatus) -> tuple[Pod, ...]:
    from meshctl.platform.kubernetes.platform import pods_of

    return pods_of(status)


def deployments(status: MeshStatus) -> list[dict[str, Any]]:
    """The control plane's deployments: ready pods of all, and the version their pods carry."""
    grouped: dict[str, list[Pod]] = defaultdict(list)
    for pod in _pods(status):
        if pod.namespace == CONTROL_NS:
            grouped[pod.deployment].append(pod)
    return [
        {
            "name": name,
            "namespace": CONTROL_NS,
            "ready": sum(1 for p in pods if p.ready),
            "pods": len(pods),
            "version": next((p.labels[VERSION_LABEL] for p in pods if VERSION_LABEL in p.labels), None),
        }
        for name, pods in sorted(grouped.items())
    ]


def _good(cell: str) -> bool:
    ready, slash, of = cell.partition("/")
    return ready == of if slash else cell == "running"


def _table(rows: list[list[str]], paint: Palette, state_column: int | None = None) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        if n and state_column is not None:
            cells[state_column] = paint(Tone.GOOD if _good(row[state_column]) else Tone.BAD, cells[state_column])
        lines.append("   ".join([*cells, row[-1]]).rstrip())
    return lines


def render_kube_table(status: MeshStatus, wide: bool = False, color: bool = False) -> str:
    paint = Palette(color)
    lines = [f"Mesh on {status.platform} in {status.location}", ""]
    plane = [["CONTROL PLANE", "READY", "VERSION"]]
    plane += [[d["name"], f"{d['ready']}/{d['pods']}", d["version"] or "-"] for d in deployments(status)]
    lines += [*_table(plane, paint, state_column=1), ""]
    header = ["NAMESPACE", "POD", "READY", "STATUS", "RESTARTS", "ADMIN" if wide else "PROXY"]
    rows = [header]
    by_name = {(p.namespace, p.name): p for p in _pods(status)}
    for component in status.components:
        pod = by_name.get((component.namespace, component.pod))
        if pod is None or component.kind != "workload":
            continue
        ready = f"{sum(1 for c in pod.containers if c.ready)}/{len(pod.containers)}"
        restarts = str(sum(c.restarts for c in pod.containers))
        proxy = pod.proxy
        last = component.addresses.get("admin", "-") if wide else ("ready" if proxy and proxy.ready else "not ready")
        rows.append([component.namespace, component.pod, ready, component.state, restarts, last])
    if len(rows) > 1:
        lines += [*_table(rows, paint, state_column=3), ""]
    else:
        lines += ["No meshed pods (`meshctl inject` adds the proxy to a workload).", ""]
    running = sum(1 for c in status.components if c.running)
    lines.append(f"{running} of {len(status.components)} components running")
    lines += [f"  {c.pod}: {c.detail or c.state}" for c in status.components if not c.running]
    return "\n".join(lines) + "\n"
