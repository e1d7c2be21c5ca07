"""Access control resources (SMI): HTTPRouteGroup names kinds of requests, TrafficTarget says which
workload identities may make which of them to a destination's service account.

    apiVersion: specs.smi-spec.io/v1alpha4
    kind: HTTPRouteGroup
    metadata: {name: books-routes, namespace: booksapp}
    spec:
      matches:
      - {name: read, methods: [GET], pathRegex: '/books(/.*)?'}
    ---
    apiVersion: access.smi-spec.io/v1alpha3
    kind: TrafficTarget
    metadata: {name: books-readers, namespace: booksapp}
    spec:
      destination: {kind: ServiceAccount, name: books}
      rules: [{kind: HTTPRouteGroup, name: books-routes, matches: [read]}]
      sources: [{kind: ServiceAccount, name: webapp}]

Once a TrafficTarget selects a destination, its proxy denies every request no TrafficTarget admits.
Header matches and TCP/UDP routes are refused: the proxy would not apply them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshctl.identity import is_dns_label
from meshctl.resources import openapi
from meshctl.resources.fields import Problem, child, describe, item, known_keys, mapping, sequence, string

ROUTE_GROUP_API = "specs.smi-spec.io/v1alpha4"
ROUTE_GROUP_APIS = frozenset({ROUTE_GROUP_API, "specs.smi-spec.io/v1alpha3"})
TARGET_API = "access.smi-spec.io/v1alpha3"
TARGET_APIS = frozenset({TARGET_API, "access.smi-spec.io/v1alpha2"})

# SMI's header matches are left out: the proxy would not apply them (the parser says so when present).
ROUTE_GROUP_SCHEMA = openapi.obj(
    "Named kinds of HTTP requests, which TrafficTargets allow.",
    {
        "matches": openapi.array(
            "The kinds of requests.",
            openapi.obj(
                "Requests by method and path.",
                {
                    "name": openapi.string("The match's name, as TrafficTarget rules list it.", title="a match name",
                                           example="read"),
                    "methods": openapi.array("The methods (default, or \"*\": every method).",
                                             openapi.string("An HTTP method, or * for every method.",
                                                            title="a method", example="GET")),
                    "pathRegex": openapi.string("A regular expression the whole path must match (default: every "
                                                "path).", title="a regular expression", example="/books(/.*)?"),
                },
                required=("name",),
            ),
            min_items=1, title="at least one match",
        ),
    },
    required=("matches",),
)  # fmt: skip


def _subject_schema(description: str) -> openapi.Schema:
    return openapi.obj(
        description,
        {
            "kind": openapi.string("Always ServiceAccount.", enum=("ServiceAccount",)),
            "name": openapi.dns_label("The service account.", "a service account name", "webapp"),
            "namespace": openapi.dns_label("Its namespace (default: the TrafficTarget's).", "a namespace",
                                           "booksapp"),
        },
        required=("kind", "name"),
    )  # fmt: skip


TARGET_SCHEMA = openapi.obj(
    "Which workload identities may make which requests to a destination. Once one selects a destination, its "
    "proxy denies every request none admits.",
    {
        "destination": _subject_schema("The service account whose workloads receive the requests."),
        "rules": openapi.array(
            "The requests admitted: HTTPRouteGroups of the TrafficTarget's namespace.",
            openapi.obj(
                "Requests of one HTTPRouteGroup.",
                {
                    "kind": openapi.string("Always HTTPRouteGroup.", enum=("HTTPRouteGroup",),
                                           title="HTTPRouteGroup (TCP and UDP routes are not supported)"),
                    "name": openapi.dns_label("The HTTPRouteGroup.", "an HTTPRouteGroup name", "books-routes"),
                    "matches": openapi.array("The names of its matches (default: all of them).",
                                             openapi.string("A match name.", title="a match name", example="read")),
                },
                required=("kind", "name"),
            ),
            min_items=1, title="at least one of the rules",
        ),
        "sources": openapi.array("The service accounts whose workloads may make the requests.",
                                 _subject_schema("A service account allowed to make the requests."),
                                 min_items=1, title="at least one of the sources"),
    },
    required=("destination", "rules", "sources"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HTTPMatch:
    name: str
    methods: tuple[str, ...] | None  # None (or "*"): every method
    path_regex: str | None  # anchored at both ends; None: every path


@dataclass(frozen=True, slots=True)
class HTTPRouteGroupSpec:
    matches: tuple[HTTPMatch, ...]


@dataclass(frozen=True, slots=True)
class Subject:
    name: str  # a service account
    namespace: str | None  # None: the TrafficTarget's own namespace


@dataclass(frozen=True, slots=True)
class Rule:
    group: str  # an HTTPRouteGroup in the TrafficTarget's namespace
    matches: tuple[str, ...] | None  # None: every match of the group


@dataclass(frozen=True, slots=True)
class TrafficTargetSpec:
    destination: Subject
    rules: tuple[Rule, ...]
    sources: tuple[Subject, ...]


def _label(value: object, path: str, problems: list[Problem], what: str) -> str | None:
    text = string(value, path, problems, what)
    if text is not None and not is_dns_label(text):
        problems.append(Problem(path, f"expected {what} (a DNS label: a-z, 0-9, -), got {describe(text)}"))
        return None
    return text


def parse_route_group(value: object, path: str, problems: list[Problem]) -> HTTPRouteGroupSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    before = len(problems)
    known_keys(node, path, problems, ("matches",))
    where = child(path, "matches")
    raw = sequence(node.get("matches"), where, problems, "a list of matches ({name, methods, pathRegex})")
    matches: list[HTTPMatch] = []
    for index, entry in enumerate(raw or []):
        at = item(where, index)
        match = mapping(entry, at, problems)
        if match is None:
            continue
        if "headers" in match:
            problems.append(Problem(child(at, "headers"), "not supported: requests are matched by method and path"))
        known_keys(match, at, problems, ("name", "methods", "pathRegex"), ignored=("headers",))
        name = string(match.get("name"), child(at, "name"), problems, "a match name")
        methods: tuple[str, ...] | None = None
        if match.get("methods") is not None:
            listed = sequence(match["methods"], child(at, "methods"), problems, "a list of methods")
            texts = [string(m, item(child(at, "methods"), i), problems, "a method") for i, m in enumerate(listed or [])]
            methods = None if "*" in texts else tuple(m.upper() for m in texts if m is not None)
        regex = None
        if match.get("pathRegex") is not None:
            regex = string(match["pathRegex"], child(at, "pathRegex"), problems, "a regular expression")
            if regex is not None:
                try:
                    re.compile(regex)
                except re.error as exc:
                    problems.append(Problem(child(at, "pathRegex"), f"not a valid regular expression: {exc}"))
        if name is not None and any(m.name == name for m in matches):
            problems.append(Problem(child(at, "name"), f"duplicate match name {name!r}"))
        if name is not None:
            matches.append(HTTPMatch(name, methods, regex))
    if raw is not None and not raw:
        problems.append(Problem(where, "expected at least one match"))
    return None if len(problems) > before else HTTPRouteGroupSpec(tuple(matches))


def _subject(value: object, path: str, problems: list[Problem]) -> Subject | None:
    node = mapping(value, path, problems, "a mapping {kind: ServiceAccount, name, namespace}")
    if node is None:
        return None
    known_keys(node, path, problems, ("kind", "name", "namespace"))
    if node.get("kind") != "ServiceAccount":
        problems.append(Problem(child(path, "kind"), f"expected ServiceAccount, got {describe(node.get('kind'))}"))
    name = _label(node.get("name"), child(path, "name"), problems, "a service account name")
    namespace = None
    if node.get("namespace") is not None:
        namespace = _label(node["namespace"], child(path, "namespace"), problems, "a namespace")
    return None if name is None else Subject(name, namespace)


def _rule(value: object, path: str, problems: list[Problem]) -> Rule | None:
    node = mapping(value, path, problems, "a mapping {kind: HTTPRouteGroup, name, matches}")
    if node is None:
        return None
    known_keys(node, path, problems, ("kind", "name", "matches"))
    if node.get("kind") != "HTTPRouteGroup":
        got = describe(node.get("kind"))
        problems.append(Problem(child(path, "kind"), f"expected HTTPRouteGroup (TCP and UDP routes are not supported), "
                                                     f"got {got}"))  # fmt: skip
    name = _label(node.get("name"), child(path, "name"), problems, "an HTTPRouteGroup name")
    matches = None
    if node.get("matches") is not None:
        listed = sequence(node["matches"], child(path, "matches"), problems, "a list of match names")
        at = child(path, "matches")
        names = [string(m, item(at, i), problems, "a match name") for i, m in enumerate(listed or [])]
        matches = tuple(n for n in names if n is not None)
    return None if name is None else Rule(name, matches)


def parse_traffic_target(value: object, path: str, problems: list[Problem]) -> TrafficTargetSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    before = len(problems)
    known_keys(node, path, problems, ("destination", "rules", "sources"))
    destination = _subject(node.get("destination"), child(path, "destination"), problems)
    lists: dict[str, list[Any]] = {}
    for key, parse in (("rules", _rule), ("sources", _subject)):
        where = child(path, key)
        raw = sequence(node.get(key), where, problems, f"a list of {key}")
        if raw is not None and not raw:
            problems.append(Problem(where, f"expected at least one of the {key}"))
        lists[key] = [parse(entry, item(where, i), problems) for i, entry in enumerate(raw or [])]
    if len(problems) > before or destination is None:
        return None
    return TrafficTargetSpec(destination, tuple(lists["rules"]), tuple(lists["sources"]))


def route_group_to_dict(spec: HTTPRouteGroupSpec) -> dict[str, Any]:
    out = []
    for match in spec.matches:
        entry: dict[str, Any] = {"name": match.name}
        if match.methods is not None:
            entry["methods"] = list(match.methods)
        if match.path_regex is not None:
            entry["pathRegex"] = match.path_regex
        out.append(entry)
    return {"matches": out}


def _subject_dict(subject: Subject) -> dict[str, Any]:
    out = {"kind": "ServiceAccount", "name": subject.name}
    if subject.namespace is not None:
        out["namespace"] = subject.namespace
    return out


def traffic_target_to_dict(spec: TrafficTargetSpec) -> dict[str, Any]:
    rules = []
    for rule in spec.rules:
        entry: dict[str, Any] = {"kind": "HTTPRouteGroup", "name": rule.group}
        if rule.matches is not None:
            entry["matches"] = list(rule.matches)
        rules.append(entry)
    return {"destination": _subject_dict(spec.destination), "rules": rules,
            "sources": [_subject_dict(s) for s in spec.sources]}  # fmt: skip
