"""The mesh resources a platform holds, read back: files of the local resource directory, or custom objects
of the cluster. `meshctl get`, `delete` and `describe` read them here; proxies receive the same ones from
the control plane.

A document that no longer validates is not dropped silently: it is named in `problems`, so the command can
say which file or object to fix (the control plane keeps the last good version of such a file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshctl.errors import UsageError
from meshctl.resources import KindDef, MeshResource, ResourceError, load_file, parse_document, resource_files
from meshctl.resources.fields import Problem
from meshctl.resources.names import plural_of

if TYPE_CHECKING:
    from meshctl.platform.kubernetes.api import KubeApi


@dataclass(frozen=True)
class StoredResource:
    resource: MeshResource
    created: datetime | None  # the file's modification time, or the object's creationTimestamp
    origin: str  # where it is kept: a file path, or "cluster" (`resource.source` says which object)


@dataclass
class ResourceListing:
    items: list[StoredResource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # documents that could not be read, one line each

    def of_kind(self, kind: str) -> list[MeshResource]:
        return [s.resource for s in self.items if s.resource.kind == kind]


def read_directory(directory: Path, kinds: Iterable[KindDef], namespace: str | None) -> ResourceListing:
    """Resources of `kinds` in the files of `directory` (of `namespace`, or all when None), in file order."""
    wanted = {d.kind for d in kinds}
    listing = ResourceListing()
    try:
        files = resource_files(directory)
    except OSError:
        return listing  # no directory yet: nothing was ever applied
    for path in files:
        try:
            resources = load_file(path)
            created: datetime | None = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except ResourceError as exc:
            listing.problems.extend(f"{p} (the control plane keeps its last good version)" for p in exc.problems)
            continue
        except OSError as exc:
            listing.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        for resource in resources:
            if resource.kind in wanted and (namespace is None or resource.namespace == namespace):
                listing.items.append(StoredResource(resource, created, str(path)))
    return listing


def list_cluster(api: KubeApi, kinds: Iterable[KindDef], namespace: str | None,
                 missing_ok: bool = False) -> ResourceListing:  # fmt: skip
    """The custom objects of `kinds`: one list call per kind. A kind whose CRD is not installed is an
    error, unless `missing_ok` (then it is a problem of the listing, and the other kinds are still read)."""
    from meshctl.platform.kubernetes.api import NotFound, quote

    listing = ResourceListing()
    for definition in kinds:
        where = f"/namespaces/{quote(namespace)}" if namespace else ""
        path = f"/apis/{definition.api_version}{where}/{plural_of(definition)}"
        try:
            objects = api.list(path)
        except NotFound:
            message = f"the cluster has no resource type {plural_of(definition)} ({definition.api_version})"
            if not missing_ok:
                hint = "install the mesh's CRDs: `meshctl install | kubectl apply -f -`"
                raise UsageError(message, hint=hint) from None
            listing.problems.append(message)
            continue
        for obj in objects:
            _add_object(listing, obj, definition)
    return listing


def _add_object(listing: ResourceListing, obj: dict[str, Any], definition: KindDef) -> None:
    metadata = obj.get("metadata") or {}
    source = f"{plural_of(definition)}/{metadata.get('name')} in namespace {metadata.get('namespace')}"
    document = {k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in obj}
    document.setdefault("kind", definition.kind)
    problems: list[Problem] = []
    resource = parse_document(document, problems, source=source)
    if resource is None:
        first = problems[0] if problems else "invalid"
        listing.problems.append(f"{source}: {first} (the proxies do not apply it)")
        return
    listing.items.append(StoredResource(resource, _timestamp(metadata.get("creationTimestamp")), "cluster"))


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
