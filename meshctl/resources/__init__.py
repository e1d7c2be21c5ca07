"""CRD-shaped mesh resources (ServiceProfile, ...): models, validation and loading.

The same YAML is applied on both platforms: with `meshctl apply -f` locally, with kubectl on Kubernetes.
"""

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
