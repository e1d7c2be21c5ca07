"""Egress: a host outside the mesh, admitted by an Egress resource of the proxy's namespace, as a Destination.

Compiled from the snapshot into the router: only when no service of the mesh matches an authority does
the router ask the EgressTable, and only when the namespace has an Egress is there a table (without one
an unknown authority costs what it always did: one dict lookup, cached). An admitted host becomes a
Destination with one endpoint, the host itself, reached in plain HTTP with no identity; its one route
carries the Egress's timeout and retries, and its metrics are labelled with the host's authority like
any other destination's (tls="false"). A refused authority gets a hint that names the fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshctl.api import mesh_pb2
from meshctl.proxy.policy.route import CompiledProfile
from meshctl.resources.egress import EgressSpec, allows, parse_spec
from meshctl.resources.fields import Problem
from meshctl.resources.profile_conditions import RequestMatch
from meshctl.resources.service_profile import Route, ServiceProfileSpec

if TYPE_CHECKING:
    from meshctl.proxy.policy.resolve import Destination

log = logging.getLogger("meshctl.proxy.policy.egress")

HTTP_PORT = 80  # an authority without a port
_EVERY_REQUEST = RequestMatch(path_regex=".*")


class EgressTable:
    """The Egress resources of one namespace; `resolve` is asked on a router cache miss only."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list[tuple[str, EgressSpec, CompiledProfile]]) -> None:
        self._entries = entries  # ("<namespace>/<name>", spec, its one-route profile)

    def resolve(self, host: str, port: int | None) -> Destination | None:
        from meshctl.proxy.policy.resolve import Destination, Endpoint

        port = port or HTTP_PORT
        for name, spec, profile in self._entries:
            if allows(spec, host, port):
                authority = f"{host}:{port}"
                return Destination(authority=authority, service=host, namespace="", port=port, protocol="http",
                                   endpoints=(Endpoint(host, port, "", ""),), profile=profile,
                                   egress=name)  # fmt: skip
        return None

    def to_json(self) -> list[dict[str, object]]:
        return [{"egress": name, "hosts": list(spec.hosts), "ports": list(spec.ports)}
                for name, spec, _ in self._entries]  # fmt: skip


def egress_table(resources: Iterable[mesh_pb2.Resource], namespace: str) -> EgressTable | None:
    """The Egress resources of `namespace` (the proxy's own), or None when it has none."""
    entries = []
    for resource in resources:
        if resource.kind != "Egress" or (resource.namespace or namespace) != namespace:
            continue
        name = f"{namespace}/{resource.name}"
        problems: list[Problem] = []
        try:
            spec = parse_spec(json.loads(resource.spec_json), "spec", problems)
        except ValueError as exc:
            log.warning("Egress %s ignored: %s", name, exc)
            continue
        if spec is None:
            log.warning("Egress %s ignored: %s", name, "; ".join(str(p) for p in problems))
            continue
        route = Route(f"egress/{resource.name}", _EVERY_REQUEST, timeout=spec.timeout, timeout_s=spec.timeout_s,
                      is_retryable=spec.is_retryable)  # fmt: skip
        entries.append((name, spec, CompiledProfile(ServiceProfileSpec(routes=(route,)))))
    return EgressTable(entries) if entries else None


def refusal_hint(host: str, port: int | None, mesh_name: tuple[str, str] | None) -> str:
    """What to do about an authority that is neither a service nor admitted by an Egress."""
    if mesh_name is not None:
        service, ns = mesh_name
        return f"no service {service} in namespace {ns}{f' on port {port}' if port else ''}: check the name"
    return f"apply an Egress for {host}:{port or HTTP_PORT}"
