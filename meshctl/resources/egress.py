"""Egress: the hosts outside the mesh that the meshed workloads of one namespace may reach.

    apiVersion: meshctl.io/v1alpha1
    kind: Egress
    metadata: {name: payments-api, namespace: booksapp}
    spec:
      hosts: [api.payments.example, "*.cdn.example"]   # exact names, or "*." and a domain (any subdomain)
      ports: [{number: 80, protocol: http}]
      timeout: 5s                                      # optional, as a route's (default 10s)
      isRetryable: true                                # optional, retried within the default retry budget

The outbound proxy of a pod in the Egress's namespace forwards a request whose authority is one of the
hosts and ports, with metrics, the timeout and retries as for a meshed service; any other host outside
the mesh stays refused with 503 "unknown service" and a hint naming the Egress that would admit it.
Only plain HTTP is forwarded: TLS to the host is the app's own (https-passthrough is not supported, so
the schema refuses it rather than the proxy silently dropping it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshctl.resources import openapi
from meshctl.resources.fields import (
    Problem,
    boolean,
    child,
    describe,
    duration,
    integer,
    item,
    known_keys,
    mapping,
    sequence,
    string,
)

PROTOCOLS = ("http",)
DEFAULT_TIMEOUT_S = 10.0  # as a profile route without `timeout`
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_MESH_SUFFIXES = (".svc", ".svc.cluster.local")
# What the schema admits before the parser lower-cases a host and drops a final dot.
_HOST_SCHEMA_PATTERN = (r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


@dataclass(frozen=True, slots=True)
class EgressSpec:
    hosts: tuple[str, ...]  # lower case; "*.example.com" admits every subdomain of example.com
    ports: tuple[int, ...]
    timeout: str | None = None  # as written
    timeout_s: float = DEFAULT_TIMEOUT_S
    is_retryable: bool = False


SPEC_SCHEMA = openapi.obj(
    "Hosts outside the mesh that this namespace's workloads may reach through their proxy.",
    {
        "hosts": openapi.array(
            'Exact host names, or "*." and a domain for any of its subdomains.',
            openapi.string("A host name, or *. and a domain.",
                           title='a host name such as "api.example.com" or "*.example.com"',
                           pattern=_HOST_SCHEMA_PATTERN, max_length=253, example="api.payments.example"),
            min_items=1, title="at least one host"),
        "ports": openapi.array(
            "The ports admitted on every host.",
            openapi.obj("One port.", {
                "number": openapi.integer("The port number.", minimum=1, maximum=65535, example=80),
                "protocol": openapi.string("The protocol spoken (default http).", enum=PROTOCOLS, example="http"),
            }, required=("number",)),
            min_items=1, title="a list of ports"),
        "timeout": openapi.duration("Time for a response (default 10s).", example="5s"),
        "isRetryable": openapi.boolean("A failed request may be sent again (within the default retry budget)."),
    },
    required=("hosts", "ports"),
)  # fmt: skip


def parse_spec(value: object, path: str, problems: list[Problem]) -> EgressSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    before = len(problems)
    known_keys(node, path, problems, ("hosts", "ports", "timeout", "isRetryable"))
    hosts = _hosts(node.get("hosts"), child(path, "hosts"), problems)
    ports = _ports(node.get("ports"), child(path, "ports"), problems)
    timeout, timeout_s = None, DEFAULT_TIMEOUT_S
    if node.get("timeout") is not None:
        seconds = duration(node["timeout"], child(path, "timeout"), problems)
        if seconds is not None:
            timeout, timeout_s = str(node["timeout"]), seconds
    retryable = False
    if node.get("isRetryable") is not None:
        retryable = bool(boolean(node["isRetryable"], child(path, "isRetryable"), problems))
    if len(problems) > before:
        return None
    return EgressSpec(hosts, ports, timeout, timeout_s, retryable)


def _hosts(value: object, path: str, problems: list[Problem]) -> tuple[str, ...]:
    raw = sequence(value, path, problems, 'a list of host names such as "api.example.com" or "*.example.com"')
    if raw is None:
        return ()
    if not raw:
        problems.append(Problem(path, "expected at least one host"))
    hosts: list[str] = []
    for index, entry in enumerate(raw):
        at = item(path, index)
        host = string(entry, at, problems, "a host name")
        if host is None:
            continue
        host = host.rstrip(".").lower()
        if len(host) > 253 or not _HOST.match(host):
            problems.append(Problem(at, f'expected a host name such as "api.example.com" or "*.example.com", '
                                        f"got {describe(entry)}"))  # fmt: skip
        elif host.endswith(_MESH_SUFFIXES) or "." not in host:
            problems.append(Problem(at, f"{host} names a service of the mesh: an Egress is for hosts outside it"))
        elif host in hosts:
            problems.append(Problem(at, f"duplicate host {host!r}"))
        else:
            hosts.append(host)
    return tuple(hosts)


def _ports(value: object, path: str, problems: list[Problem]) -> tuple[int, ...]:
    raw = sequence(value, path, problems, "a list of ports ({number, protocol})")
    if raw is None:
        return ()
    if not raw:
        problems.append(Problem(path, "expected at least one port"))
    ports: list[int] = []
    for index, entry in enumerate(raw):
        at = item(path, index)
        node = mapping(entry, at, problems, "a mapping with number and protocol")
        if node is None:
            continue
        known_keys(node, at, problems, ("number", "protocol"))
        number = integer(node.get("number"), child(at, "number"), problems, minimum=1, maximum=65535)
        protocol = node.get("protocol", "http")
        if protocol not in PROTOCOLS:
            problems.append(Problem(child(at, "protocol"), f"expected http (TLS to the host is the app's own), "
                                                           f"got {describe(protocol)}"))  # fmt: skip
        if number is not None and number in ports:
            problems.append(Problem(child(at, "number"), f"duplicate port {number}"))
        elif number is not None:
            ports.append(number)
    return tuple(ports)


def spec_to_dict(spec: EgressSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"hosts": list(spec.hosts), "ports": [{"number": p, "protocol": "http"} for p in spec.ports]}
    if spec.timeout is not None:
        out["timeout"] = spec.timeout
    if spec.is_retryable:
        out["isRetryable"] = True
    return out


def allows(spec: EgressSpec, host: str, port: int) -> bool:
    """Whether the spec admits `host` (lower case, no trailing dot) on `port`."""
    if port not in spec.ports:
        return False
    for allowed in spec.hosts:
        if allowed == host or (allowed[0] == "*" and host.endswith(allowed[1:]) and len(host) > len(allowed) - 1):
            return True
    return False
