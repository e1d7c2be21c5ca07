"""Access control at the destination: which client identities may make which requests (SMI TrafficTarget).

Built per snapshot for the proxy's own identity: the TrafficTargets whose destination is its service
account, with their HTTPRouteGroup matches resolved. None when no TrafficTarget selects it, so the
inbound path pays one attribute check. Once one does, a request is admitted only when some
TrafficTarget lists the client's mTLS identity among its sources and one of its rules matches the
request's method and path; everything else is denied (no identity at all, too), named by policy.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.identity import parse_identity, workload_identity

log = logging.getLogger("meshctl.proxy.policy.authz")

_Match = Callable[[str, str], bool]


def _match(entry: dict[str, object]) -> _Match:
    methods = entry.get("methods")
    allowed = frozenset(str(m).upper() for m in methods) if isinstance(methods, list) else None
    if allowed is not None and "*" in allowed:
        allowed = None
    regex = entry.get("pathRegex")
    fullmatch = re.compile(str(regex)).fullmatch if regex is not None else None
    if allowed is None and fullmatch is None:
        return lambda _m, _p: True
    if fullmatch is None:
        return lambda m, _p: m in allowed  # type: ignore[operator]
    if allowed is None:
        return lambda _m, p: fullmatch(p) is not None
    return lambda m, p: m in allowed and fullmatch(p) is not None


class Policy:
    __slots__ = ("name", "sources", "matches")

    def __init__(self, name: str, sources: frozenset[str], matches: tuple[_Match, ...]) -> None:
        self.name = name  # "<namespace>/<name>" of the TrafficTarget
        self.sources = sources  # workload identities
        self.matches = matches

    def admits(self, identity: str, method: str, path: str) -> bool:
        return identity in self.sources and any(m(method, path) for m in self.matches)


class Authz:
    __slots__ = ("policies", "name")

    def __init__(self, policies: list[Policy]) -> None:
        self.policies = tuple(policies)
        self.name = ",".join(p.name for p in self.policies)  # the policies a denial is counted under

    def denies(self, identity: str | None, method: str, path: str) -> bool:
        if identity is None:
            return True
        query = path.find("?")
        bare = path if query < 0 else path[:query]
        return not any(p.admits(identity, method, bare) for p in self.policies)

    def to_json(self) -> dict[str, object]:
        return {p.name: sorted(p.sources) for p in self.policies}


def authz_for(identity: str, resources: Iterable[mesh_pb2.Resource], namespace: str) -> Authz | None:
    """The access policy of the workload with `identity`, None when no TrafficTarget selects it."""
    try:
        own = parse_identity(identity)
    except ValueError:
        return None
    groups: dict[tuple[str, str], dict[str, _Match]] = {}
    targets: list[tuple[str, str, Any]] = []
    for resource in resources:
        ns = resource.namespace or namespace
        try:
            spec = json.loads(resource.spec_json)
            if resource.kind == "HTTPRouteGroup":
                groups[(ns, resource.name)] = {str(m["name"]): _match(m) for m in spec["matches"]}
            elif resource.kind == "TrafficTarget":
                targets.append((ns, resource.name, spec))
        except (ValueError, KeyError, TypeError, re.error) as exc:
            log.warning("%s %s/%s ignored: %s", resource.kind, ns, resource.name, exc)
    policies = []
    for ns, name, spec in sorted(targets, key=lambda t: (t[0], t[1])):
        try:
            dest = spec["destination"]
            if (dest["name"], dest.get("namespace") or ns) != own:
                continue
            sources = frozenset(workload_identity(s["name"], s.get("namespace") or ns)
                                for s in spec["sources"])  # fmt: skip
            matches: list[_Match] = []
            for rule in spec["rules"]:
                group = groups.get((ns, rule["name"]))
                if group is None:
                    log.warning("TrafficTarget %s/%s: no HTTPRouteGroup %s: its rule admits nothing", ns, name,
                                rule["name"])  # fmt: skip
                    continue
                wanted = rule.get("matches")
                matches.extend(m for n, m in group.items() if wanted is None or n in wanted)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            log.warning("TrafficTarget %s/%s ignored (denying): %s", ns, name, exc)
            sources, matches = frozenset(), []
        policies.append(Policy(f"{ns}/{name}", sources, tuple(matches)))
    return Authz(policies) if policies else None
