"""Pods as the checks and commands need them, read from the JSON of one list call (never one get per pod)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.platform.kubernetes.conventions import PROXY_CONTAINER, PROXY_VERSION_ANNOTATION

# Waiting reasons of a container that will not start without someone changing something.
STUCK_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"}
)


@dataclass(frozen=True)
class Container:
    name: str
    ready: bool
    running: bool
    waiting: str | None  # the waiting reason, e.g. "CrashLoopBackOff"
    restarts: int
    last_exit: str | None  # "exit code 1 (Error)" of the last termination


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    phase: str
    ip: str | None
    service_account: str
    deployment: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    ready: bool
    containers: tuple[Container, ...]
    unschedulable: str | None  # the scheduler's message when the pod cannot be placed

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def proxy(self) -> Container | None:
        return next((c for c in self.containers if c.name == PROXY_CONTAINER), None)

    @property
    def proxy_version(self) -> str | None:
        return self.annotations.get(PROXY_VERSION_ANNOTATION)

    def problem(self) -> str | None:
        """Why the pod cannot run (unschedulable, crash-looping ...), or None."""
        if self.unschedulable is not None:
            return f"{self.ref} is unschedulable: {self.unschedulable}"
        for container in self.containers:
            if container.waiting in STUCK_REASONS:
                last = f", last {container.last_exit}" if container.last_exit else ""
                restarts = f" after {container.restarts} restarts" if container.restarts else ""
                return f"{self.ref}: container {container.name} is in {container.waiting}{restarts}{last}"
        return None

    def not_ready(self) -> str:
        """Why the pod is not ready, in a few words."""
        waiting = [f"{c.name} {c.waiting}" for c in self.containers if c.waiting]
        unready = [c.name for c in self.containers if not c.ready and not c.waiting]
        parts = waiting + ([f"{', '.join(unready)} not ready"] if unready else [])
        return f"{self.ref} ({self.phase}{': ' + '; '.join(parts) if parts else ''})"


def parse_pod(document: Mapping[str, Any]) -> Pod:
    metadata = document.get("metadata") or {}
    spec = document.get("spec") or {}
    status = document.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = None
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        unschedulable = str(scheduled.get("message") or "no node fits")
    labels: dict[str, str] = metadata.get("labels") or {}
    by_name = {c.get("name"): c for c in status.get("containerStatuses") or []}
    containers = tuple(
        _container(c.get("name", ""), by_name.get(c.get("name")) or {}) for c in spec.get("containers") or []
    )
    return Pod(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        phase=str(status.get("phase") or "Unknown"),
        ip=status.get("podIP"),
        service_account=str(spec.get("serviceAccountName") or "default"),
        deployment=_deployment(metadata, labels),
        labels=labels,
        annotations=metadata.get("annotations") or {},
        ready=ready,
        containers=containers,
        unschedulable=unschedulable,
    )


def _container(name: str, status: Mapping[str, Any]) -> Container:
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    last_exit = f"exit code {last.get('exitCode')} ({last.get('reason') or 'terminated'})" if last else None
    return Container(
        name=name,
        ready=bool(status.get("ready")),
        running="running" in state,
        waiting=(state.get("waiting") or {}).get("reason") if "waiting" in state else None,
        restarts=int(status.get("restartCount") or 0),
        last_exit=last_exit,
    )


def _deployment(metadata: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """The Deployment behind a pod: its ReplicaSet's name without the pod-template-hash suffix."""
    template_hash = labels.get("pod-template-hash")
    for owner in metadata.get("ownerReferences") or []:
        name = str(owner.get("name", ""))
        if owner.get("kind") == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            return name[: -len(template_hash) - 1]
        if owner.get("kind") in ("StatefulSet", "DaemonSet", "ReplicaSet"):
            return name
    return labels.get("app.kubernetes.io/name") or labels.get("app") or str(metadata.get("name", ""))
