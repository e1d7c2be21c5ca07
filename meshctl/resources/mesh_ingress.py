"""MeshIngress: the hosts and path prefixes an ingress exposes, and the service each one goes to.

An ingress proxy forwards only what a MeshIngress exposes; every other request gets a 404 naming the
reason, so a client cannot reach internal services by writing their name in Host. The shape follows a
Kubernetes Ingress, flattened:

    apiVersion: meshctl.io/v1alpha1
    kind: MeshIngress
    metadata: {name: booksapp, namespace: booksapp}
    spec:
      rules:
      - host: books.example.com        # optional: without it, any host; "*.example.com": one label deep
        paths:
        - pathPrefix: /api             # element-wise: /api and /api/x, not /apix
          service: webapp              # in the resource's namespace unless `namespace` says otherwise
          port: 7000                   # optional: the service's port
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshctl.identity import is_dns_label
from meshctl.resources import openapi
from meshctl.resources.fields import (
    Problem,
    child,
    describe,
    integer,
    item,
    known_keys,
    mapping,
    sequence,
    string,
)

HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
PREFIX_PATTERN = r"^/[\x21-\x3e\x40-\x7e]*$"  # visible ASCII but "?", as a request path on the wire
_HOST = re.compile(HOST_PATTERN)
_PREFIX = re.compile(PREFIX_PATTERN)
MAX_HOST = 253
MAX_PREFIX = 1024
HOST_EXAMPLE = 'a DNS name such as "books.example.com" or "*.example.com" (no port)'
PREFIX_EXAMPLE = 'a path starting with "/" (no query)'

_PATH_SCHEMA = openapi.obj(
    "Requests whose path starts with a prefix, and the service they go to.",
    {
        "pathPrefix": openapi.string("The path prefix, matched element-wise: /api matches /api and /api/x, not /apix.",
                                     title=PREFIX_EXAMPLE, pattern=PREFIX_PATTERN, max_length=MAX_PREFIX,
                                     example="/api"),
        "service": openapi.dns_label("The service the requests go to.", "a service name", "webapp"),
        "namespace": openapi.dns_label("The service's namespace (default: the resource's).", "a namespace name",
                                       "booksapp"),
        "port": openapi.integer("The service's port (default: its own).", minimum=1, maximum=65535, example=7000),
    },
    required=("pathPrefix", "service"),
)  # fmt: skip

SPEC_SCHEMA = openapi.obj(
    "The hosts and path prefixes an ingress exposes, and the service each goes to; anything else is refused.",
    {
        "rules": openapi.array(
            "The exposed hosts, each with its paths.",
            openapi.obj(
                "One host (or any host) and its paths.",
                {
                    "host": openapi.string("The Host the requests name (default: any); *.example.com is one label "
                                           "deep.", title=HOST_EXAMPLE, pattern=HOST_PATTERN, max_length=MAX_HOST,
                                           example="books.example.com"),
                    "paths": openapi.array("The exposed path prefixes.", _PATH_SCHEMA, min_items=1,
                                           title="a non-empty list of paths"),
                },
                required=("paths",),
            ),
            min_items=1, title="a non-empty list of rules",
        ),
    },
    required=("rules",),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IngressPath:
    path_prefix: str
    service: str
    namespace: str | None = None  # None: the resource's namespace
    port: int | None = None  # None: the service's own port


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None  # None: any host
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True, slots=True)
class MeshIngressSpec:
    rules: tuple[IngressRule, ...]


def check_ingress_name(name: str) -> str | None:
    if not is_dns_label(name):
        return f"expected a DNS label (a-z, 0-9, -) such as \"booksapp\", got {describe(name)}"
    return None


def ingress_namespace(name: str) -> None:
    """A MeshIngress names no namespace of its own: metadata.namespace is required."""
    return None


def normalize_prefix(prefix: str) -> str:
    """"/api/" and "/api" are the same prefix; "/" stays "/"."""
    return prefix.rstrip("/") or "/"


# --- parsing ----------------------------------------------------------------------------------------


def parse_spec(value: object, path: str, problems: list[Problem]) -> MeshIngressSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("rules",))
    before = len(problems)
    rules_path = child(path, "rules")
    raw_rules = sequence(node.get("rules"), rules_path, problems, "a non-empty list of rules")
    if raw_rules is not None and not raw_rules:
        problems.append(Problem(rules_path, "expected a non-empty list of rules, got an empty list"))
    rules: list[IngressRule] = []
    seen: dict[tuple[str | None, str], str] = {}
    for index, raw in enumerate(raw_rules or []):
        rule = _rule(raw, item(rules_path, index), problems)
        if rule is None:
            continue
        for number, entry in enumerate(rule.paths):
            where = item(child(item(rules_path, index), "paths"), number)
            key = (rule.host, normalize_prefix(entry.path_prefix))
            if key in seen:
                problems.append(Problem(child(where, "pathPrefix"), f"host and prefix already exposed at {seen[key]}"))
            seen.setdefault(key, where)
        rules.append(rule)
    if len(problems) > before:
        return None
    return MeshIngressSpec(tuple(rules))


def _rule(value: object, path: str, problems: list[Problem]) -> IngressRule | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("host", "paths"))
    before = len(problems)
    host = None
    if node.get("host") is not None:
        host = string(node["host"], child(path, "host"), problems, HOST_EXAMPLE)
        if host is not None and (len(host) > MAX_HOST or not _HOST.match(host)):
            problems.append(Problem(child(path, "host"), f"expected {HOST_EXAMPLE}, got {describe(host)}"))
    paths_path = child(path, "paths")
    raw_paths = sequence(node.get("paths"), paths_path, problems, "a non-empty list of paths")
    if raw_paths is not None and not raw_paths:
        problems.append(Problem(paths_path, "expected a non-empty list of paths, got an empty list"))
    paths = [_path(raw, item(paths_path, index), problems) for index, raw in enumerate(raw_paths or [])]
    if len(problems) > before:
        return None
    return IngressRule(host, tuple(p for p in paths if p is not None))


def _path(value: object, path: str, problems: list[Problem]) -> IngressPath | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("pathPrefix", "service", "namespace", "port"))
    before = len(problems)
    prefix = string(node.get("pathPrefix"), child(path, "pathPrefix"), problems, 'a path prefix such as "/api"')
    if prefix is not None and (len(prefix) > MAX_PREFIX or not _PREFIX.match(prefix) or "?" in prefix):
        problems.append(Problem(child(path, "pathPrefix"), f"expected {PREFIX_EXAMPLE}, got {describe(prefix)}"))
    service = _label(node.get("service"), child(path, "service"), problems, "a service name")
    namespace = None
    if node.get("namespace") is not None:
        namespace = _label(node["namespace"], child(path, "namespace"), problems, "a namespace name")
    port = None
    if node.get("port") is not None:
        port = integer(node["port"], child(path, "port"), problems, minimum=1, maximum=65535)
    if len(problems) > before or prefix is None or service is None:
        return None
    return IngressPath(prefix, service, namespace, port)


def _label(value: object, path: str, problems: list[Problem], what: str) -> str | None:
    text = string(value, path, problems, what)
    if text is not None and not is_dns_label(text):
        problems.append(Problem(path, f"expected {what} (a DNS label: a-z, 0-9, -), got {describe(text)}"))
        return None
    return text


# --- back to the document shape ---------------------------------------------------------------------


def spec_to_dict(spec: MeshIngressSpec) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for rule in spec.rules:
        out: dict[str, Any] = {} if rule.host is None else {"host": rule.host}
        out["paths"] = [_path_dict(p) for p in rule.paths]
        rules.append(out)
    return {"rules": rules}


def _path_dict(entry: IngressPath) -> dict[str, Any]:
    out: dict[str, Any] = {"pathPrefix": entry.path_prefix, "service": entry.service}
    if entry.namespace is not None:
        out["namespace"] = entry.namespace
    if entry.port is not None:
        out["port"] = entry.port
    return out
