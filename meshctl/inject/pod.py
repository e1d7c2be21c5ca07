"""The pod mutation itself, on a pod's (or pod template's) metadata and spec, and its exact inverse.

Annotation mode only marks the pod for the injector; manual mode adds what the injector would (the
webhook calls `inject_manual` too, so both give the same pod). Everything is done in place on plain
dicts, keeping the order of what was there: added containers and keys are removed again by uninject,
so uninject(inject(x)) == x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.inject import containers
from meshctl.platform.kubernetes import conventions as k8s

ENABLED = "enabled"
DISABLED = "disabled"


@dataclass(frozen=True)
class InjectOptions:
    version: str
    manual: bool = False
    debug_sidecar: bool = False


Dict = dict[str, Any]


def child_dict(parent: Dict, key: str) -> Dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _list(parent: Dict, key: str) -> list[Any]:
    value = parent.get(key)
    if not isinstance(value, list):
        value = parent[key] = []
    return value


def _items(value: object) -> list[Dict]:
    """The objects of a list (anything else in it, or a value that is no list, ignored)."""
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def _names(value: object) -> list[str]:
    return [str(c.get("name", "")) for c in _items(value)]


def annotations_of(meta: Dict) -> Dict:
    value = meta.get("annotations")
    return value if isinstance(value, dict) else {}


def is_injected(spec: Dict) -> bool:
    """The proxy is in the pod already (manual injection, or the injector's)."""
    return k8s.PROXY_CONTAINER in _names(spec.get("containers"))


def why_not(meta: Dict, spec: Dict, namespace: str | None) -> str | None:
    """The reason this pod cannot (or must not) be injected, or None."""
    if namespace in k8s.UNMESHED_NAMESPACES:
        return f"namespace {namespace} is never meshed"
    if annotations_of(meta).get(k8s.INJECT_ANNOTATION) == DISABLED:
        return f"it is annotated {k8s.INJECT_ANNOTATION}: {DISABLED}"
    if spec.get("hostNetwork") is True:
        return "it uses hostNetwork: the proxy cannot take the traffic of the node's network"
    app = _app_containers(spec)
    if not app:
        return "its pod has no containers"
    for container in app:
        for port in _items(container.get("ports")):
            if port.get("containerPort") in containers.PROXY_PORTS:
                return f"container {container.get('name')} uses port {port['containerPort']}, which is the proxy's"
    return None


def _app_containers(spec: Dict) -> list[Dict]:
    return [c for c in _items(spec.get("containers")) if c.get("name") not in containers.CONTAINERS]


def _app_port(spec: Dict) -> tuple[int | None, str]:
    """The app's first declared TCP port and its protocol ("grpc" when the port is named grpc or grpc-*)."""
    for container in _app_containers(spec):
        for port in _items(container.get("ports")):
            number = port.get("containerPort")
            if isinstance(number, int) and port.get("protocol", "TCP") == "TCP":
                name = str(port.get("name", ""))
                return number, "grpc" if name == "grpc" or name.startswith("grpc-") else "http"
    return None, "http"


def _debug_wanted(meta: Dict, options: InjectOptions) -> bool:
    return options.debug_sidecar or annotations_of(meta).get(k8s.DEBUG_SIDECAR_ANNOTATION) == ENABLED


def inject(meta: Dict, spec: Dict, workload: str, options: InjectOptions) -> bool:
    """Inject in place (the caller checked `why_not`); False when there was nothing to do."""
    if options.manual:
        return inject_manual(meta, spec, workload, options)
    notes = annotations_of(meta)
    wanted = {k8s.INJECT_ANNOTATION: ENABLED}
    if options.debug_sidecar:
        wanted[k8s.DEBUG_SIDECAR_ANNOTATION] = ENABLED
    if is_injected(spec) or all(notes.get(k) == v for k, v in wanted.items()):
        return False
    child_dict(meta, "annotations").update(wanted)
    return True


def inject_manual(meta: Dict, spec: Dict, workload: str, options: InjectOptions) -> bool:
    """Add the init and proxy containers (and the debug one), the volumes, the label and the version."""
    debug = _debug_wanted(meta, options)
    if is_injected(spec) and (not debug or k8s.DEBUG_CONTAINER in _names(spec.get("containers"))):
        return False
    port, protocol = _app_port(spec)
    plan = containers.ProxyPlan(workload, port, protocol, options.version)
    pod_containers = _list(spec, "containers")
    if not is_injected(spec):
        _list(spec, "initContainers").append(containers.init_container(plan))
        pod_containers.insert(0, containers.proxy_container(plan))  # first: it starts before the app
        _list(spec, "volumes").extend(containers.volumes())
        child_dict(meta, "labels")[k8s.MESH_LABEL] = k8s.CONTROL_NS
        child_dict(meta, "annotations")[k8s.PROXY_VERSION_ANNOTATION] = options.version
    if debug:
        pod_containers.append(containers.debug_container(plan))
    return True


def uninject(meta: Dict, spec: Dict) -> bool:
    """Remove everything inject adds (both modes); False when there was none of it. The debug-sidecar
    annotation goes too, even if the user wrote it: it means nothing without the proxy."""
    changed = False
    removals: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("initContainers", (k8s.INIT_CONTAINER,)),
        ("containers", containers.CONTAINERS),
        ("volumes", containers.VOLUMES),
    )
    for key, names in removals:
        items = spec.get(key)
        if isinstance(items, list):
            kept = [c for c in items if not (isinstance(c, dict) and c.get("name") in names)]
            if len(kept) != len(items):
                changed = True
                if kept or key == "containers":
                    spec[key] = kept
                else:
                    del spec[key]
    marks: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("annotations", (k8s.INJECT_ANNOTATION, k8s.DEBUG_SIDECAR_ANNOTATION, k8s.PROXY_VERSION_ANNOTATION)),
        ("labels", (k8s.MESH_LABEL,)),
    )
    for key, names in marks:
        values = meta.get(key)
        if not isinstance(values, dict):
            continue
        # `inject: disabled` is the user's opt-out, not ours: it stays
        ours = [n for n in names if n in values and not (n == k8s.INJECT_ANNOTATION and values[n] == DISABLED)]
        for name in ours:
            del values[name]
        if ours:
            changed = True
            if not values:
                del meta[key]
    return changed


def pod_workload(meta: Dict) -> str:
    """The workload a pod belongs to, as `meshctl` names deployments: the owning ReplicaSet without its
    pod-template-hash suffix, else the owner, else the pod's own name."""
    labels = annotations_of({"annotations": meta.get("labels")})
    for owner in _items(meta.get("ownerReferences")):
        if not owner.get("name"):
            continue
        name = str(owner["name"])
        suffix = f"-{labels.get('pod-template-hash', '')}"
        if owner.get("kind") == "ReplicaSet" and len(suffix) > 1 and name.endswith(suffix):
            return name[: -len(suffix)]
        return name
    if meta.get("name"):
        return str(meta["name"])
    generated = str(meta.get("generateName") or "").rstrip("-")
    return generated or f"$({k8s.POD_NAME_ENV})"
