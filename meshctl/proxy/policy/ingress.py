"""What an ingress exposes: (authority, path) → the Destination a MeshIngress sends it to, or a refusal.

Built once per snapshot from its MeshIngress resources and resolved against the Router of the same
snapshot, so a request decides against one consistent view. Only what a MeshIngress names is reachable:
a request for anything else — an internal service written in Host included — raises `NotExposed`
(answered 404 with the reason). Which rule wins, most specific first: an exact host over a wildcard
host ("*.example.com", one label deep) over a rule without host; then the longest path prefix, matched
element-wise ("/api" takes "/api" and "/api/x", not "/apix"); resources in (namespace, name) order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from meshctl.api import mesh_pb2
from meshctl.proxy.errors import NotExposed
from meshctl.proxy.policy.resolve import Destination, Router, split_authority
from meshctl.resources.fields import Problem
from meshctl.resources.mesh_ingress import MeshIngressSpec, normalize_prefix, parse_spec

log = logging.getLogger("meshctl.proxy.policy.ingress")

KIND = "MeshIngress"
_CACHE_LIMIT = 4096  # distinct (authority, path) decisions remembered; cleared when full


@dataclass(frozen=True, slots=True)
class Exposure:
    """One path of one rule, with the Destination it goes to (None: the service is not in discovery)."""

    host: str | None  # None: any host; "*.example.com": a wildcard
    prefix: str  # normalised: no trailing "/" unless it is "/"
    service: str
    namespace: str
    destination: Destination | None
    source: str  # "meshingress/<namespace>/<name>", for logs

    def takes_path(self, path: str) -> bool:
        prefix = self.prefix
        if prefix == "/":
            return True
        return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


class IngressRoutes:
    """The exposures of one snapshot. `decide` is on the ingress's hot path: decisions are cached."""

    def __init__(self, exposures: Iterable[Exposure]) -> None:
        self._exact: dict[str, list[Exposure]] = {}
        self._wildcard: dict[str, list[Exposure]] = {}  # by the suffix after "*"
        self._any: list[Exposure] = []
        for exposure in exposures:
            host = exposure.host
            if host is None:
                self._any.append(exposure)
            elif host.startswith("*."):
                self._wildcard.setdefault(host[1:], []).append(exposure)
            else:
                self._exact.setdefault(host, []).append(exposure)
        for group in (*self._exact.values(), *self._wildcard.values(), self._any):
            group.sort(key=lambda e: -len(e.prefix))  # stable: earlier resources win a tie
        self._cache: dict[tuple[str, str], Destination | str | None] = {}  # str: why it is refused

    @property
    def empty(self) -> bool:
        return not (self._exact or self._wildcard or self._any)

    def decide(self, authority: str, path: str) -> Destination | None:
        """The exposed Destination; None when the exposed service is not in discovery; NotExposed else."""
        query = path.find("?")
        key = (authority, path if query < 0 else path[:query])
        found = self._cache.get(key)
        if found is None and key not in self._cache:
            found = self._decide(*key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        if isinstance(found, str):
            raise NotExposed(found)  # a fresh exception each time: a cached one would grow its traceback
        return found

    def _decide(self, authority: str, path: str) -> Destination | str | None:
        parsed = split_authority(authority) if authority else None
        host = parsed[0] if parsed is not None else ""
        for group in self._candidates(host):
            for exposure in group:
                if exposure.takes_path(path):
                    return exposure.destination
        if self.empty:
            return "no MeshIngress exposes anything on this ingress"
        return f"no MeshIngress exposes host {host or '(none)'!r} path {_clip(path)!r}"

    def _candidates(self, host: str) -> Iterable[list[Exposure]]:
        if host:
            exact = self._exact.get(host)
            if exact:
                yield exact
            dot = host.find(".")
            if dot > 0:
                wildcard = self._wildcard.get(host[dot:])
                if wildcard:
                    yield wildcard
        yield self._any


def ingress_routes(snapshot: mesh_pb2.Snapshot, router: Router) -> IngressRoutes:
    """The MeshIngress resources of a snapshot, resolved against the router built from the same snapshot."""
    exposures: list[Exposure] = []
    resources = sorted((r for r in snapshot.resources if r.kind == KIND), key=lambda r: (r.namespace, r.name))
    for resource in resources:
        source = f"meshingress/{resource.namespace}/{resource.name}"
        spec = _spec(resource.spec_json, source)
        if spec is None:
            continue
        for rule in spec.rules:
            for entry in rule.paths:
                namespace = entry.namespace or resource.namespace or router.namespace
                authority = f"{entry.service}.{namespace}.svc.cluster.local"
                if entry.port is not None:
                    authority += f":{entry.port}"
                destination = router.resolve(authority)
                if destination is None:
                    log.warning("%s exposes %s, which is not a known service", source, authority)
                exposures.append(
                    Exposure(rule.host, normalize_prefix(entry.path_prefix), entry.service, namespace, destination,
                             source)  # fmt: skip
                )
    return IngressRoutes(exposures)


def _spec(spec_json: str, source: str) -> MeshIngressSpec | None:
    problems: list[Problem] = []
    try:
        spec = parse_spec(json.loads(spec_json) if spec_json else None, "spec", problems)
    except ValueError as exc:
        problems.append(Problem("spec", f"invalid JSON: {exc}"))
        spec = None
    if spec is None:
        log.warning("%s ignored: %s", source, "; ".join(str(p) for p in problems) or "invalid spec")
    return spec


def _clip(path: str) -> str:
    return path if len(path) <= 100 else path[:97] + "..."
