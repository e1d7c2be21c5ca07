"""CRD-shaped mesh resources (ServiceProfile, ...): models, validation and loading.

The same YAML is applied on both platforms: with `meshctl apply -f` locally, with kubectl on Kubernetes.

The names below are loaded on first use (PEP 562): the proxy imports a few spec modules of this package
(service_profile, mesh_ingress, ...) and need not carry every kind and the loader in its resident memory.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshctl.resources.fields import Problem
    from meshctl.resources.kinds import API_VERSION, KINDS, KindDef, MeshResource, parse_document, register_kind
    from meshctl.resources.loader import (
        LocatedProblem,
        ResourceError,
        check_unique,
        load_file,
        parse_text,
        resource_files,
    )

_WHERE = {
    "Problem": "fields",
    **dict.fromkeys(("API_VERSION", "KINDS", "KindDef", "MeshResource", "parse_document", "register_kind"), "kinds"),
    **dict.fromkeys(
        ("LocatedProblem", "ResourceError", "check_unique", "load_file", "parse_text", "resource_files"), "loader"
    ),
}

__all__ = [
    "API_VERSION",
    "KINDS",
    "KindDef",
    "LocatedProblem",
    "MeshResource",
    "Problem",
    "ResourceError",
    "check_unique",
    "load_file",
    "parse_document",
    "parse_text",
    "register_kind",
    "resource_files",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"meshctl.resources.{module}"), name)
    globals()[name] = value
    return value
