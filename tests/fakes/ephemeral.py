"""The `pods/{name}/ephemeralcontainers` subresource of the fake API server, as kube-apiserver serves it:
PATCH with a strategic-merge, merge or JSON patch (415 for other media types), the validation a real
server applies (422 Invalid: only `spec.ephemeralContainers` may change, existing ones may be neither
changed nor removed, a name must be new in the pod, `targetContainerName` must name one of its containers,
no ports, probes, lifecycle or resources), and the answer: the whole Pod.

The kubelet's part follows: each new ephemeral container reports `waiting: ContainerCreating` in
`status.ephemeralContainerStatuses`, then `running` after `Kubelet.start_s` — or keeps waiting with the
reason a test gives (`Kubelet.stuck = {"reason": "ImagePullBackOff", ...}`).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

PATCH_TYPES = (
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
    "application/json-patch+json",
)
FORBIDDEN_FIELDS = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources")

Answer = tuple[int, dict[str, Any]]


def invalid(pod: str, causes: list[str]) -> Answer:
    message = f'Pod "{pod}" is invalid: ' + ", ".join(causes)
    return 422, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                 "reason": "Invalid", "details": {"name": pod, "kind": "Pod",
                                                  "causes": [{"message": c} for c in causes]}, "code": 422}  # fmt: skip


def _patched(spec: dict[str, Any], content_type: str, patch: Any) -> list[dict[str, Any]] | str:
    """The ephemeral containers after the patch, or why the patch cannot be applied."""
    current: list[dict[str, Any]] = copy.deepcopy(spec.get("ephemeralContainers") or [])
    if content_type == "application/json-patch+json":
        if not isinstance(patch, list):
            return "a JSON patch is a list of operations"
        for op in patch:
            path, value = op.get("path"), op.get("value")
            if op.get("op") == "add" and path == "/spec/ephemeralContainers/-":
                current.append(value)
            elif op.get("op") in ("add", "replace") and path == "/spec/ephemeralContainers":
                current = list(value or [])
            else:
                return f"unsupported operation {op.get('op')} {path}"
        return current
    if not isinstance(patch, dict) or set(patch) - {"spec", "metadata", "apiVersion", "kind"}:
        return "the patch must be an object with a spec"
    if set(patch.get("spec") or {}) - {"ephemeralContainers"}:
        return "Forbidden: pod updates may not change fields other than `spec.ephemeralContainers`"
    given = (patch.get("spec") or {}).get("ephemeralContainers")
    if content_type == "application/merge-patch+json":
        return list(given or [])  # a merge patch replaces the list
    by_name = {c.get("name"): i for i, c in enumerate(current)}
    for container in given or []:  # strategic merge: the list is keyed by name
        if container.get("name") in by_name:
            merged = copy.deepcopy(current[by_name[container.get("name")]])
            merged.update(container)
            current[by_name[container.get("name")]] = merged
        else:
            current.append(container)
    return current


def _causes(spec: dict[str, Any], after: list[dict[str, Any]]) -> list[str]:
    before = {c.get("name"): c for c in spec.get("ephemeralContainers") or []}
    names = {c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    seen: set[str] = set()
    causes = []
    for name, old in before.items():
        now = next((c for c in after if c.get("name") == name), None)
        if now is None or now != old:
            what = "removed" if now is None else "changed"
            forbidden = f'existing ephemeral containers "{name}" may not be {what}'
            causes.append(f"spec.ephemeralContainers: Forbidden: {forbidden}")
    for i, container in enumerate(after):
        at, name = f"spec.ephemeralContainers[{i}]", container.get("name")
        if not name:
            causes.append(f"{at}.name: Required value")
        elif name in names or name in seen:
            causes.append(f'{at}.name: Duplicate value: "{name}"')
        seen.add(str(name))
        if not container.get("image"):
            causes.append(f"{at}.image: Required value")
        target = container.get("targetContainerName")
        if target is not None and target not in {c.get("name") for c in spec.get("containers") or []}:
            causes.append(f'{at}.targetContainerName: Not found: "{target}"')
        causes += [f"{at}.{f}: Forbidden: cannot be set for an Ephemeral Container" for f in FORBIDDEN_FIELDS
                   if f in container]  # fmt: skip
    return causes


@dataclass
class Kubelet:
    """What the node does with a new ephemeral container."""

    start_s: float = 0.2
    stuck: dict[str, str] | None = None  # a waiting state to keep, e.g. {"reason": "ImagePullBackOff"}
    lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, pod: dict[str, Any], name: str) -> None:
        statuses = pod.setdefault("status", {}).setdefault("ephemeralContainerStatuses", [])
        entry = {"name": name, "ready": False, "restartCount": 0, "image": "",
                 "state": {"waiting": {"reason": "ContainerCreating"}}}  # fmt: skip
        statuses.append(entry)
        if self.stuck is not None:
            entry["state"] = {"waiting": dict(self.stuck)}
            return

        def run() -> None:
            with self.lock:
                entry["state"] = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}

        timer = threading.Timer(self.start_s, run)
        timer.daemon = True
        timer.start()


def patch_ephemeral(pod: dict[str, Any], content_type: str, patch: Any, kubelet: Kubelet) -> Answer:
    name = pod["metadata"]["name"]
    kind = content_type.split(";")[0].strip()
    if kind not in PATCH_TYPES:
        return 415, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 415,
                     "reason": "UnsupportedMediaType",
                     "message": f"the body of the request was in an unknown format - accepted media types include: "
                                f"{', '.join(PATCH_TYPES)}"}  # fmt: skip
    spec = pod.setdefault("spec", {})
    after = _patched(spec, kind, patch)
    if isinstance(after, str):
        return invalid(name, [after])
    causes = _causes(spec, after)
    if causes:
        return invalid(name, causes)
    with kubelet.lock:
        known = {c.get("name") for c in spec.get("ephemeralContainers") or []}
        spec["ephemeralContainers"] = after
        for container in after:
            if container.get("name") not in known:
                kubelet.create(pod, str(container["name"]))
        return 200, copy.deepcopy(pod)
