"""The names a kind answers to on the command line, as kubectl's: `serviceprofile`, `serviceprofiles`,
`ServiceProfile`, `sp`. Kinds come from the KINDS registry, so a newly registered kind is found by its
kind and plural names at once; a short name is one line below.
"""

from __future__ import annotations

from meshctl.errors import UsageError
from meshctl.resources.kinds import KINDS, KindDef

# The CRDs' shortNames: Linkerd's for ServiceProfile, SMI's for its kinds, ours for the rest.
SHORT_NAMES: dict[str, tuple[str, ...]] = {
    "ServiceProfile": ("sp",),
    "TrafficSplit": ("ts",),
    "TrafficTarget": ("tt",),
    "HTTPRouteGroup": ("htr",),
    "FaultInjection": ("fi",),
    "MeshIngress": ("mi",),
}


def plural_of(definition: KindDef) -> str:
    return definition.plural or f"{definition.kind.lower()}s"


def names_of(definition: KindDef) -> tuple[str, ...]:
    """Every lower-case name of a kind: singular, plural, short names."""
    return (definition.kind.lower(), plural_of(definition), *SHORT_NAMES.get(definition.kind, ()))


def kind_names() -> list[str]:
    """The plural of every kind, for completion and help."""
    return sorted(plural_of(d) for d in KINDS.values())


def resolve_kind(text: str) -> KindDef:
    """The kind a command-line name means; UsageError naming the known kinds otherwise."""
    wanted = text.strip().lower()
    # kubectl accepts the fully qualified plural too: serviceprofiles.meshctl.io
    head, dot, group = wanted.partition(".")
    for definition in KINDS.values():
        if wanted in names_of(definition):
            return definition
        if dot and head == plural_of(definition) and definition.api_version.partition("/")[0] == group:
            return definition
    known = ", ".join(f"{plural_of(d)} ({'/'.join(SHORT_NAMES.get(d.kind, ()) or (d.kind.lower(),))})"
                      for d in sorted(KINDS.values(), key=plural_of))  # fmt: skip
    raise UsageError(f"the mesh has no resource type {text!r}", hint=f"use one of: {known}")
