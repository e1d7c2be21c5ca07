"""kubectl-style resource targets: `deploy/webapp`, `pod/webapp-1`, `ns/booksapp`, `webapp`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from meshctl.errors import UsageError
from meshctl.identity import is_dns_label


class Kind(StrEnum):
    DEPLOYMENT = "deployment"
    POD = "pod"
    NAMESPACE = "namespace"
    SERVICE = "service"


_ALIASES: dict[str, Kind] = {
    "deploy": Kind.DEPLOYMENT,
    "deployment": Kind.DEPLOYMENT,
    "deployments": Kind.DEPLOYMENT,
    "po": Kind.POD,
    "pod": Kind.POD,
    "pods": Kind.POD,
    "ns": Kind.NAMESPACE,
    "namespace": Kind.NAMESPACE,
    "namespaces": Kind.NAMESPACE,
    "svc": Kind.SERVICE,
    "service": Kind.SERVICE,
    "services": Kind.SERVICE,
}


@dataclass(frozen=True)
class Target:
    kind: Kind
    name: str | None  # None means "all of that kind"
    namespace: str

    def __str__(self) -> str:
        short = {Kind.DEPLOYMENT: "deploy", Kind.POD: "pod", Kind.NAMESPACE: "ns", Kind.SERVICE: "svc"}
        return f"{short[self.kind]}/{self.name}" if self.name else short[self.kind]


def parse_target(text: str, namespace: str, default_kind: Kind = Kind.DEPLOYMENT) -> Target:
    """Parse a target as kubectl would; a bare name means `default_kind/name`."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty target", hint="name one like deploy/webapp, pod/webapp-1 or ns/booksapp")
    kind_text, sep, name = raw.partition("/")
    if not sep:
        kind = _ALIASES.get(raw.lower())
        if kind is not None:
            return Target(kind, None, namespace)
        kind, name = default_kind, raw
    else:
        found = _ALIASES.get(kind_text.lower())
        if found is None:
            choices = ", ".join(sorted({"deploy", "pod", "ns", "svc"}))
            raise UsageError(f"unknown resource type {kind_text!r} in {raw!r}", hint=f"use one of: {choices}")
        kind = found
    if not is_dns_label(name.lower()) and not (kind is Kind.POD and _is_pod_name(name)):
        raise UsageError(f"{name!r} is not a valid resource name", hint="names are lowercase DNS labels")
    if kind is Kind.NAMESPACE:
        return Target(kind, name, name)
    return Target(kind, name, namespace)


def _is_pod_name(name: str) -> bool:
    return len(name) <= 253 and all(is_dns_label(p) for p in name.split("."))
