"""What Tab offers beyond commands and flags: targets, namespaces and check codes.

Completion runs on every key press, so it only reads files: the local mesh's record (`mesh.json`,
written by `meshctl up`) and the check catalogue in `checks/`. It never starts, connects or raises; when
there is nothing to read it offers nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from typer._click.core import Context  # typer vendors click since 0.26; pinned <0.29

if TYPE_CHECKING:
    from meshctl.platform.local.state import ComponentRecord

KINDS = ("deploy", "pod", "ns", "svc")
_KIND_OF = {
    "deploy": "deploy", "deployment": "deploy", "deployments": "deploy",
    "po": "pod", "pod": "pod", "pods": "pod",
    "ns": "ns", "namespace": "ns", "namespaces": "ns",
    "svc": "svc", "service": "svc", "services": "svc",
}  # fmt: skip


def _home(ctx: Context) -> Path:
    root = ctx.find_root()
    home = root.params.get("home")
    if home:
        return Path(home).expanduser()
    from meshctl.cli.context import default_home

    return default_home()


def _option(ctx: Context, name: str) -> str | None:
    """A flag's value, from the command being completed or the root (global flags go in either place)."""
    seen: Context | None = ctx
    while seen is not None:
        value = seen.params.get(name)
        if isinstance(value, str) and value:
            return value
        seen = seen.parent
    return None


def components(ctx: Context) -> list[ComponentRecord]:
    """The local mesh's components, or none (no mesh, another platform, an unreadable record)."""
    platform = _option(ctx, "platform") or os.environ.get("MESHCTL_PLATFORM") or "local"
    if platform != "local":
        return []
    from meshctl.platform.local.state import Layout, read_record

    try:
        record = read_record(Layout(_home(ctx)))
    except Exception:  # completion must never print a traceback into the user's command line
        return []
    return [] if record is None else list(record.components)


def namespaces(ctx: Context) -> list[str]:
    return sorted({c.namespace for c in components(ctx)})


def _names(ctx: Context, kind: str) -> list[str]:
    found = components(ctx)
    namespace = _option(ctx, "namespace")
    if kind == "ns":
        return sorted({c.namespace for c in found})
    if namespace:
        found = [c for c in found if c.namespace == namespace]
    if kind == "deploy":
        return sorted({c.deployment for c in found if c.kind in ("workload", "ingress")})
    if kind == "pod":
        return sorted({c.pod for c in found if c.kind in ("workload", "ingress")})
    return sorted({c.service for c in found if c.service})


def targets(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    """`deploy/<TAB>` offers the mesh's deployments; before the slash, the kinds."""
    kind_text, slash, prefix = incomplete.partition("/")
    if not slash:
        return [f"{kind}/" for kind in KINDS if kind.startswith(kind_text.lower())]
    kind = _KIND_OF.get(kind_text.lower())
    if kind is None:
        return []
    return [f"{kind_text}/{name}" for name in _names(ctx, kind) if name.startswith(prefix)]


def namespace_names(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    return [n for n in namespaces(ctx) if n.startswith(incomplete)]


def check_codes(ctx: Context, args: list[str], incomplete: str) -> list[tuple[str, str]]:
    """Every documented check code, with its title for the shells that show one."""
    from meshctl.health.explain import catalogue_dirs, documented_codes

    out: dict[str, str] = {}
    for directory in catalogue_dirs():
        for code in sorted(documented_codes(directory)) if directory.is_dir() else []:
            if code.startswith(incomplete.upper()) and code not in out:
                first = (directory / f"{code}.md").read_text(encoding="utf-8").partition("\n")[0]
                out[code] = first.lstrip("# ").partition(": ")[2] or code
    return list(out.items())


def resource_kinds(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    """`meshctl get <TAB>`: every kind's plural and short names."""
    from meshctl.resources import KINDS
    from meshctl.resources.names import names_of

    names = sorted({name for definition in KINDS.values() for name in names_of(definition)[1:]})
    return [n for n in names if n.startswith(incomplete.lower())]


def resource_names(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    """`meshctl get sp <TAB>`: the names of the local mesh's resources of the kind typed before."""
    platform = _option(ctx, "platform") or os.environ.get("MESHCTL_PLATFORM") or "local"
    kind = ctx.params.get("kind")
    if platform != "local" or not isinstance(kind, str):
        return []
    try:
        from meshctl.platform.local.state import Layout
        from meshctl.platform.resources import read_directory
        from meshctl.resources.names import resolve_kind

        listing = read_directory(Layout(_home(ctx)).config, [resolve_kind(kind)], _option(ctx, "namespace"))
    except Exception:  # completion must never print a traceback into the user's command line
        return []
    return sorted({s.resource.name for s in listing.items if s.resource.name.startswith(incomplete)})
