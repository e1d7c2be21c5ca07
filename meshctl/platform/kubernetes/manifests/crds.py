"""One CustomResourceDefinition per resource kind, carrying the kind's own openAPIV3 schema.

The `spec` schema in a CRD is the kind's SPEC_SCHEMA object itself, not a copy: what the API server
checks is what `meshctl apply` checks. Kinds of groups that are not ours or SMI's (linkerd.io profiles,
accepted by `apply` for compatibility) get no CRD.
"""

from __future__ import annotations

from typing import Any

from meshctl.resources import KINDS, KindDef

OUR_GROUPS = ("meshctl.io", "split.smi-spec.io", "specs.smi-spec.io", "access.smi-spec.io")

# `kubectl get sp` as with Linkerd; the SMI short names are SMI's own.
SHORT_NAMES = {
    "ServiceProfile": ["sp"],
    "MeshIngress": ["mi"],
    "TrafficSplit": ["ts"],
    "HTTPRouteGroup": ["htr"],
    "TrafficTarget": ["tt"],
    "FaultInjection": ["fi"],
}

_METADATA = {"type": "object", "description": "Standard object metadata."}


def crd_name(definition: KindDef) -> str:
    group = definition.api_version.partition("/")[0]
    return f"{definition.plural}.{group}"


def custom_resource_definition(definition: KindDef, labels: dict[str, str]) -> dict[str, Any]:
    group, _, version = definition.api_version.partition("/")
    if definition.spec_schema is None or not definition.plural:
        raise ValueError(f"kind {definition.kind} has no schema or no plural: it cannot be a CRD")
    schema = {
        "type": "object",
        "description": f"A {definition.kind} of the mesh.",
        "properties": {
            "apiVersion": {"type": "string", "description": "The API version of this object."},
            "kind": {"type": "string", "description": "The kind of this object."},
            "metadata": _METADATA,
            "spec": definition.spec_schema,
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(definition), "labels": dict(labels)},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": definition.plural,
                "singular": definition.kind.lower(),
                "kind": definition.kind,
                "listKind": f"{definition.kind}List",
                "shortNames": SHORT_NAMES.get(definition.kind, []),
            },
            "versions": [{"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def installed_kinds() -> list[KindDef]:
    """The kinds that get a CRD, in registration order."""
    return [d for d in KINDS.values() if d.api_version.partition("/")[0] in OUR_GROUPS]


def custom_resource_definitions(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [custom_resource_definition(definition, labels) for definition in installed_kinds()]
