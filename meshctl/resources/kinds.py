"""The registry of resource kinds and the parsing of one document (apiVersion, kind, metadata, spec).

A kind declares which apiVersions it accepts, how its name is checked, its default namespace, the
openAPIV3 schema of its spec (SPEC_SCHEMA in its module: the one `meshctl install` puts in its CRD) and
how its spec is parsed and written back. Adding a kind is one `register_kind` call; the tests in
tests/unit/resources/test_schemas.py then hold its schema and its parser to each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.identity import is_dns_label
from meshctl.resources import access, egress, fault_injection, mesh_ingress, service_profile, traffic_split
from meshctl.resources.fields import Problem, child, describe, known_keys, mapping, string

API_GROUP = "meshctl.io"
API_VERSION = f"{API_GROUP}/v1alpha1"

# Kinds of the design that have no model yet: named in the error so users know they are coming.
PLANNED_KINDS: tuple[str, ...] = ()

# Filled in by the API server; accepted so `kubectl get -o yaml` output can be applied as is.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "finalizers",
    "ownerReferences",
)


@dataclass(frozen=True, slots=True)
class KindDef:
    kind: str
    api_version: str  # the canonical apiVersion, used when the resource is written or sent
    accepted_api_versions: frozenset[str]
    parse_spec: Callable[[object, str, list[Problem]], object | None]
    spec_to_dict: Callable[[Any], dict[str, Any]]
    check_name: Callable[[str], str | None]  # a message when the name is not acceptable
    default_namespace: Callable[[str], str | None]  # from the name; None: the namespace is required
    plural: str = ""  # the lower-case plural of the CRD and of `meshctl get`: "serviceprofiles"
    # The openAPIV3Schema of `spec`: the one schema both `meshctl apply` validates with and the
    # CustomResourceDefinition of `meshctl install` carries. Each kind's module defines it as SPEC_SCHEMA.
    spec_schema: Mapping[str, Any] | None = None


KINDS: dict[str, KindDef] = {}


def register_kind(definition: KindDef) -> None:
    KINDS[definition.kind] = definition


register_kind(
    KindDef(
        kind="ServiceProfile",
        plural="serviceprofiles",
        api_version=API_VERSION,
        # linkerd.io/v1alpha2 so that profiles written for Linkerd apply unchanged.
        accepted_api_versions=frozenset({API_VERSION, "linkerd.io/v1alpha2"}),
        parse_spec=service_profile.parse_spec,
        spec_schema=service_profile.SPEC_SCHEMA,
        spec_to_dict=service_profile.spec_to_dict,
        check_name=service_profile.check_profile_name,
        default_namespace=service_profile.profile_namespace,
    )
)
register_kind(
    KindDef(
        kind="MeshIngress",
        plural="meshingresses",
        api_version=API_VERSION,
        accepted_api_versions=frozenset({API_VERSION}),
        parse_spec=mesh_ingress.parse_spec,
        spec_schema=mesh_ingress.SPEC_SCHEMA,
        spec_to_dict=mesh_ingress.spec_to_dict,
        check_name=mesh_ingress.check_ingress_name,
        default_namespace=mesh_ingress.ingress_namespace,
    )
)
register_kind(
    KindDef(
        kind="TrafficSplit",
        plural="trafficsplits",
        api_version=traffic_split.API_VERSION,
        accepted_api_versions=traffic_split.API_VERSIONS,
        parse_spec=traffic_split.parse_spec,
        spec_schema=traffic_split.SPEC_SCHEMA,
        spec_to_dict=traffic_split.spec_to_dict,
        check_name=traffic_split.check_name,
        default_namespace=traffic_split.no_default_namespace,
    )
)
register_kind(
    KindDef(
        kind="HTTPRouteGroup",
        plural="httproutegroups",
        api_version=access.ROUTE_GROUP_API,
        accepted_api_versions=access.ROUTE_GROUP_APIS,
        parse_spec=access.parse_route_group,
        spec_schema=access.ROUTE_GROUP_SCHEMA,
        spec_to_dict=access.route_group_to_dict,
        check_name=traffic_split.check_name,
        default_namespace=traffic_split.no_default_namespace,
    )
)
register_kind(
    KindDef(
        kind="TrafficTarget",
        plural="traffictargets",
        api_version=access.TARGET_API,
        accepted_api_versions=access.TARGET_APIS,
        parse_spec=access.parse_traffic_target,
        spec_schema=access.TARGET_SCHEMA,
        spec_to_dict=access.traffic_target_to_dict,
        check_name=traffic_split.check_name,
        default_namespace=traffic_split.no_default_namespace,
    )
)
register_kind(
    KindDef(
        kind="FaultInjection",
        plural="faultinjections",
        api_version=API_VERSION,
        accepted_api_versions=frozenset({API_VERSION}),
        parse_spec=fault_injection.parse_spec,
        spec_schema=fault_injection.SPEC_SCHEMA,
        spec_to_dict=fault_injection.spec_to_dict,
        check_name=traffic_split.check_name,
        default_namespace=traffic_split.no_default_namespace,
    )
)
register_kind(
    KindDef(
        kind="Egress",
        plural="egresses",
        api_version=API_VERSION,
        accepted_api_versions=frozenset({API_VERSION}),
        parse_spec=egress.parse_spec,
        spec_to_dict=egress.spec_to_dict,
        check_name=traffic_split.check_name,
        default_namespace=traffic_split.no_default_namespace,
        spec_schema=egress.SPEC_SCHEMA,
    )
)


@dataclass(frozen=True)
class MeshResource:
    """One validated document. `spec` is the kind's model (ServiceProfileSpec ...)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    spec: object
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    source: str = "<input>"
    document: int = 1  # 1-based position in its file

    @property
    def ref(self) -> str:
        """kubectl-style reference: serviceprofile/books.booksapp.svc.cluster.local"""
        return f"{self.kind.lower()}/{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def spec_dict(self) -> dict[str, Any]:
        return KINDS[self.kind].spec_to_dict(self.spec)

    def spec_json(self) -> str:
        return json.dumps(self.spec_dict(), sort_keys=True, separators=(",", ":"))

    def to_document(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": metadata,
            "spec": self.spec_dict(),
        }


def parse_document(
    value: object, problems: list[Problem], *, source: str = "<input>", document: int = 1
) -> MeshResource | None:
    """Validate one document; problems (with field paths) are appended, None returned when any."""
    node = mapping(value, "", problems, "a mapping with apiVersion, kind, metadata and spec")
    if node is None:
        return None
    known_keys(node, "", problems, ("apiVersion", "kind", "metadata", "spec"), ignored=("status",))
    before = len(problems)
    definition = _kind(node.get("kind"), problems)
    if definition is None:
        return None  # the rest of the document cannot be judged without its kind
    _api_version(node.get("apiVersion"), definition, problems)
    name, namespace, labels, annotations = _metadata(node.get("metadata"), definition, problems)
    spec: object | None = None
    if "spec" not in node:
        problems.append(Problem("spec", "missing (the specification of the resource)"))
    else:
        spec = _parse_spec(definition, node["spec"], problems)
    if len(problems) > before or name is None or namespace is None or spec is None:
        return None
    return MeshResource(
        api_version=definition.api_version,
        kind=definition.kind,
        name=name,
        namespace=namespace,
        spec=spec,
        labels=labels,
        annotations=annotations,
        source=source,
        document=document,
    )


def _parse_spec(definition: KindDef, value: object, problems: list[Problem]) -> object | None:
    """The schema judges the shape first (the check the API server makes with the CRD), then the kind's
    parser the meaning. One mistake gives one message: a parser's problem at or under a place the schema
    already refused is dropped, except where the parser knows why a field the schema lacks is refused."""
    found: list[Problem] = []
    if definition.spec_schema is not None:
        from meshctl.resources.schema import validate  # not on the proxy's path: it parses specs directly

        validate(value, definition.spec_schema, "spec", found)
    parsed: list[Problem] = []
    spec = definition.parse_spec(value, "spec", parsed)
    refused = {p.path for p in found}
    for problem in parsed:
        if problem.path in refused and _UNKNOWN_FIELD in _message_at(found, problem.path):
            found = [p if p.path != problem.path else problem for p in found]
        elif not any(problem.path == at or problem.path.startswith((f"{at}.", f"{at}[")) for at in refused):
            found.append(problem)
    problems.extend(found)
    return None if found else spec


_UNKNOWN_FIELD = "unknown field"


def _message_at(problems: list[Problem], path: str) -> str:
    return next((p.message for p in problems if p.path == path), "")


def _kind(value: object, problems: list[Problem]) -> KindDef | None:
    supported = ", ".join(sorted(KINDS))
    if isinstance(value, str) and value in KINDS:
        return KINDS[value]
    if isinstance(value, str) and value in PLANNED_KINDS:
        problems.append(Problem("kind", f"{value} is not supported yet (supported: {supported})"))
    elif value is None:
        problems.append(Problem("kind", f"missing (one of {supported})"))
    else:
        problems.append(Problem("kind", f"expected one of {supported}, got {describe(value)}"))
    return None


def _api_version(value: object, definition: KindDef, problems: list[Problem]) -> None:
    if isinstance(value, str) and value in definition.accepted_api_versions:
        return
    accepted = " or ".join(sorted(definition.accepted_api_versions, reverse=True))
    got = "nothing" if value is None else describe(value)
    problems.append(Problem("apiVersion", f"expected {accepted} for kind {definition.kind}, got {got}"))


def _metadata(
    value: object, definition: KindDef, problems: list[Problem]
) -> tuple[str | None, str | None, dict[str, str], dict[str, str]]:
    if value is None:
        problems.append(Problem("metadata", "missing (a mapping with name and optionally namespace)"))
        return None, None, {}, {}
    node = mapping(value, "metadata", problems)
    if node is None:
        return None, None, {}, {}
    known_keys(node, "metadata", problems, ("name", "namespace", "labels", "annotations"), ignored=_SERVER_METADATA)
    name = string(node.get("name"), "metadata.name", problems)
    if name is not None:
        message = definition.check_name(name)
        if message is not None:
            problems.append(Problem("metadata.name", message))
            name = None
    namespace: str | None = None
    if node.get("namespace") is not None:
        namespace = string(node["namespace"], "metadata.namespace", problems, "a namespace name")
        if namespace is not None and not is_dns_label(namespace):
            problems.append(
                Problem("metadata.namespace", f"expected a DNS label (a-z, 0-9, -), got {describe(namespace)}")
            )
            namespace = None
    elif name is not None:
        namespace = definition.default_namespace(name)
        if namespace is None:
            problems.append(Problem("metadata.namespace", "missing"))
    labels = _string_map(node.get("labels"), "metadata.labels", problems)
    annotations = _string_map(node.get("annotations"), "metadata.annotations", problems)
    return name, namespace, labels, annotations


def _string_map(value: object, path: str, problems: list[Problem]) -> dict[str, str]:
    if value is None:
        return {}
    node = mapping(value, path, problems, "a mapping of strings")
    if node is None:
        return {}
    out: dict[str, str] = {}
    for key, entry in node.items():
        if not isinstance(entry, str):
            problems.append(Problem(child(path, key), f"expected a string, got {describe(entry)}"))
        else:
            out[key] = entry
    return out
