"""Discovery deltas: what changed between two snapshots, and a snapshot rebuilt from its base and a delta.

The control plane makes one delta per change (store.py) and the proxy merges it (control_client.py), so
both sides share the keys and the order here: a merged snapshot is equal, field for field and in the
same order, to the complete snapshot of that version. Keys are the fields that name an entry: a service
"namespace/name:port", a resource "kind/namespace/name" (neither part may contain "/").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from meshctl.api import mesh_pb2

_E = TypeVar("_E", mesh_pb2.Service, mesh_pb2.Resource)


class DeltaError(ValueError):
    """A delta that does not apply to the snapshot at hand (its base is another version)."""


def service_key(service: mesh_pb2.Service) -> str:
    return f"{service.namespace}/{service.name}:{service.port}"


def resource_key(resource: mesh_pb2.Resource) -> str:
    return f"{resource.kind}/{resource.namespace}/{resource.name}"


def _service_order(service: mesh_pb2.Service) -> tuple[str, str, int]:
    return (service.namespace, service.name, service.port)


def _resource_order(resource: mesh_pb2.Resource) -> tuple[str, str, str]:
    return (resource.kind, resource.namespace, resource.name)


def sort_services(services: Iterable[mesh_pb2.Service]) -> list[mesh_pb2.Service]:
    """The order of a complete snapshot's services (the store builds it in this order too)."""
    return sorted(services, key=_service_order)


def sort_resources(resources: Iterable[mesh_pb2.Resource]) -> list[mesh_pb2.Resource]:
    return sorted(resources, key=_resource_order)


def entry_wires(snapshot: mesh_pb2.Snapshot) -> tuple[dict[str, bytes], dict[str, bytes]] | None:
    """Each service's and resource's encoding by key; None when two entries share a key (no delta then)."""
    services = {service_key(s): s.SerializeToString(deterministic=True) for s in snapshot.services}
    resources = {resource_key(r): r.SerializeToString(deterministic=True) for r in snapshot.resources}
    if len(services) != len(snapshot.services) or len(resources) != len(snapshot.resources):
        return None
    return services, resources


def make_delta(
    new: mesh_pb2.Snapshot,
    base_version: int,
    base_wires: tuple[Mapping[str, bytes], Mapping[str, bytes]],
    new_wires: tuple[Mapping[str, bytes], Mapping[str, bytes]],
) -> mesh_pb2.Snapshot:
    """The delta from the snapshot whose entry encodings are `base_wires` to `new` (with `new_wires`)."""
    old_services, old_resources = base_wires
    new_services, new_resources = new_wires
    return mesh_pb2.Snapshot(
        version=new.version,
        delta=True,
        base_version=base_version,
        services=[s for s in new.services if old_services.get(service_key(s)) != new_services[service_key(s)]],
        resources=[r for r in new.resources if old_resources.get(resource_key(r)) != new_resources[resource_key(r)]],
        removed_services=sorted(old_services.keys() - new_services.keys()),
        removed_resources=sorted(old_resources.keys() - new_resources.keys()),
    )


def apply_delta(base: mesh_pb2.Snapshot | None, delta: mesh_pb2.Snapshot) -> mesh_pb2.Snapshot:
    """The complete snapshot of `delta.version`; DeltaError when `base` is not the delta's base version."""
    if base is None or base.version != delta.base_version:
        have = "no snapshot" if base is None else f"version {base.version}"
        raise DeltaError(f"a delta from version {delta.base_version} arrived, but the proxy has {have}")
    # A copy changed in place: building the snapshot anew from its entries copied each one from Python
    # and took 4.7 ms at 1,000 pods, four times the decoding of the whole snapshot.
    merged = mesh_pb2.Snapshot()
    merged.CopyFrom(base)
    merged.version = delta.version
    _merge(merged.services, delta.services, delta.removed_services, service_key, _service_order)
    _merge(merged.resources, delta.resources, delta.removed_resources, resource_key, _resource_order)
    return merged


def _merge(
    entries: RepeatedCompositeFieldContainer[_E],
    changed: Iterable[_E],
    removed: Iterable[str],
    key: Callable[[_E], str],
    order: Callable[[_E], tuple[str, str, Any]],
) -> None:
    """Replace the changed entries where they are, drop the removed ones, add new ones in their place."""
    index = {key(entry): i for i, entry in enumerate(entries)}
    added = []
    for entry in changed:
        at = index.pop(key(entry), None)
        if at is None:
            added.append(entry)
        else:
            entries[at].CopyFrom(entry)
    for at in sorted((index[k] for k in removed if k in index), reverse=True):
        del entries[at]
    if added:
        entries.extend(added)
        entries.sort(key=order)
