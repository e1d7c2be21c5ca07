"""`meshctl describe`'s model: what applies to a workload's traffic, and where each setting comes from.

A workload (the pods of a deployment, or of a service) is described from the mesh resources the platform
holds, read by a table of readers (`READERS`): each one looks at the resources for one concern — routes,
timeouts, retries, budgets, splits, faults, access, failure accrual, balancing, ingress — and returns
`Finding`s, each with its `Origin`: the resource (kind, namespace, name, file) or "default". A new kind
or field is one reader more (describe_readers.py); `COVERED_KINDS` lists which kinds are read.

Presentation-free: the CLI renders a `Description` as text or JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.identity import service_fqdn
from meshctl.resources import MeshResource


@dataclass(frozen=True)
class Origin:
    """Where a setting comes from: a resource, or the mesh's default (kind None)."""

    kind: str | None = None
    namespace: str = ""
    name: str = ""
    file: str | None = None  # the local file that holds it; None on Kubernetes and for defaults

    @property
    def ref(self) -> str:
        return "default" if self.kind is None else f"{self.kind}/{self.name}"

    def document(self) -> dict[str, Any]:
        if self.kind is None:
            return {"default": True}
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "file": self.file}


DEFAULT = Origin()


@dataclass(frozen=True)
class Finding:
    aspect: str  # "route", "timeout", "retries", "retry budget", "split", "fault", "access", ...
    subject: str  # what it is about: a route, a client, the endpoints ...
    setting: str  # the setting, in words
    origin: Origin = DEFAULT
    detail: Mapping[str, Any] = field(default_factory=dict)  # the same, as data (JSON)

    def document(self) -> dict[str, Any]:
        return {"aspect": self.aspect, "subject": self.subject, "setting": self.setting,
                "from": self.origin.document(), "detail": dict(self.detail)}  # fmt: skip


@dataclass(frozen=True)
class Workload:
    """The pods described: `deploy/books`, or the pods of a service."""

    target: str  # as the user named it, e.g. "deploy/books"
    namespace: str
    services: tuple[str, ...]  # the services its pods back (the destinations clients call)
    service_accounts: tuple[str, ...]  # their identities' accounts (what access policies select)
    instances: tuple[str, ...]  # pod names
    deployments: tuple[str, ...] = ()


class Resources:
    """The stored resources, by kind, with the file of each (for the origin of its findings)."""

    def __init__(self, items: Iterable[tuple[MeshResource, str | None]]) -> None:
        self._by_kind: dict[str, list[MeshResource]] = {}
        self._files: dict[tuple[str, str, str], str | None] = {}
        for resource, file in items:
            self._by_kind.setdefault(resource.kind, []).append(resource)
            self._files.setdefault(resource.key, file)

    def of_kind(self, kind: str, namespace: str | None = None) -> list[MeshResource]:
        found = self._by_kind.get(kind, [])
        return sorted((r for r in found if namespace is None or r.namespace == namespace), key=lambda r: r.name)

    def origin(self, resource: MeshResource) -> Origin:
        return Origin(resource.kind, resource.namespace, resource.name, self._files.get(resource.key))

    def profile(self, service: str, namespace: str) -> MeshResource | None:
        """A service's ServiceProfile: named after its FQDN, as the proxies find it."""
        fqdn = service_fqdn(service, namespace)
        return next((r for r in self.of_kind("ServiceProfile", namespace) if r.name == fqdn), None)


@dataclass(frozen=True)
class Scope:
    """What one reader looks at: one service of the workload (per-service readers) or the workload."""

    workload: Workload
    service: str | None  # None for workload readers

    @property
    def namespace(self) -> str:
        return self.workload.namespace


Reader = Callable[[Scope, Resources], list[Finding]]


@dataclass(frozen=True)
class ReaderDef:
    name: str
    kinds: tuple[str, ...]  # the kinds it reads
    per_service: bool  # run once per service of the workload, else once for the workload
    read: Reader


@dataclass(frozen=True)
class ServiceView:
    service: str  # "" for what applies to the workload itself (access policies)
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Description:
    workload: Workload
    views: tuple[ServiceView, ...]
    problems: tuple[str, ...] = ()  # resources that could not be read

    def origins(self) -> list[Origin]:
        """Every resource a finding comes from, once, in order of appearance."""
        seen: dict[Origin, None] = {}
        for view in self.views:
            for finding in view.findings:
                if finding.origin.kind is not None:
                    seen.setdefault(finding.origin)
        return list(seen)


def describe(workload: Workload, resources: Resources, readers: Iterable[ReaderDef] | None = None,
             problems: Iterable[str] = ()) -> Description:  # fmt: skip
    from meshctl.observe.describe_readers import READERS

    chosen = tuple(READERS if readers is None else readers)
    views = []
    for service in workload.services:
        scope = Scope(workload, service)
        findings = [f for reader in chosen if reader.per_service for f in reader.read(scope, resources)]
        views.append(ServiceView(service, tuple(findings)))
    scope = Scope(workload, None)
    own = [f for reader in chosen if not reader.per_service for f in reader.read(scope, resources)]
    if own:
        views.append(ServiceView("", tuple(own)))
    return Description(workload, tuple(views), tuple(problems))
