"""`meshctl get KIND [NAME...] [-n NS | -A] [-o table|wide|yaml|json]`: the applied mesh resources, as kubectl
lists them: the local mesh's resource files, or the cluster's custom objects on Kubernetes.

`-o yaml` of a list is a `kind: List` document, which `meshctl apply -f` reads back as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import MeshError, UsageError

if TYPE_CHECKING:
    from meshctl.platform.resources import StoredResource
    from meshctl.resources import KindDef, MeshResource

GET_EXAMPLES = examples(
    ("Every ServiceProfile of a namespace", "meshctl get sp -n booksapp"),
    ("One TrafficSplit as YAML, ready to edit and apply again",
     "meshctl get trafficsplit books-canary -n booksapp -o yaml"),
    ("The fault injections of every namespace, with the file each one is in", "meshctl get fi -A -o wide"),
)  # fmt: skip


def namespace_for(cli: CliContext, definition: KindDef, name: str | None) -> str:
    """-n, else the namespace a name implies (a ServiceProfile's FQDN), else "default" as kubectl."""
    if cli.namespace:
        return cli.namespace
    return (definition.default_namespace(name) if name else None) or "default"


# --- summaries: one line of what a resource says, per kind (a new kind shows "-" until it has one) -------


def _profile(spec: dict[str, Any]) -> str:
    routes = spec.get("routes") or []
    parts = [f"{len(routes)} route{'s' if len(routes) != 1 else ''}"]
    retryable = sum(1 for r in routes if r.get("isRetryable"))
    if retryable:
        parts.append(f"{retryable} retryable")
    if spec.get("failureAccrual"):
        parts.append(f"failureAccrual {spec['failureAccrual'].get('consecutiveFailures')}")
    if spec.get("loadBalancer"):
        parts.append(f"loadBalancer {_balancer_name(spec['loadBalancer'])}")
    return ", ".join(parts)


def _balancer_name(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type") or value.get("kind") or value.get("algorithm") or "?")
    return str(value)


def _split(spec: dict[str, Any]) -> str:
    backends = ", ".join(f"{b['service']} {b['weight']}" for b in spec.get("backends") or [])
    return f"{spec.get('service')} → {backends}"


def _target(spec: dict[str, Any]) -> str:
    sources = ", ".join(s["name"] for s in spec.get("sources") or [])
    groups = ", ".join(r["name"] for r in spec.get("rules") or [])
    return f"{sources} → {(spec.get('destination') or {}).get('name')} on {groups}"


def _route_group(spec: dict[str, Any]) -> str:
    return ", ".join(m["name"] for m in spec.get("matches") or [])


def _fault(spec: dict[str, Any]) -> str:
    parts = []
    if spec.get("abort"):
        parts.append(f"abort {spec['abort']['percent']:g}% ({spec['abort'].get('httpStatus', 503)})")
    if spec.get("delay"):
        parts.append(f"delay {spec['delay']['percent']:g}% {spec['delay']['fixedDelay']}")
    routes = f" on {', '.join(spec['routes'])}" if spec.get("routes") else ""
    return f"{spec.get('service')}{routes}: {', '.join(parts)}"


def _ingress(spec: dict[str, Any]) -> str:
    exposed = [f"{rule.get('host') or '*'}{path['pathPrefix']} → {path['service']}"
               for rule in spec.get("rules") or [] for path in rule.get("paths") or []]  # fmt: skip
    return ", ".join(exposed[:3]) + (f" (+{len(exposed) - 3})" if len(exposed) > 3 else "")


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ServiceProfile": _profile,
    "TrafficSplit": _split,
    "TrafficTarget": _target,
    "HTTPRouteGroup": _route_group,
    "FaultInjection": _fault,
    "MeshIngress": _ingress,
}


def summary(resource: MeshResource) -> str:
    summarize = SUMMARIES.get(resource.kind)
    try:
        return summarize(resource.spec_dict()) if summarize else "-"
    except (KeyError, TypeError, ValueError):  # a field renamed under us: say nothing rather than fail the list
        return "-"


def age(created: datetime | None, now: datetime) -> str:
    """kubectl's rounding: 45s, 12m, 5h, 3d."""
    if created is None:
        return "<unknown>"
    seconds = max(int((now - created).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 180 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows)


def render(items: Sequence[StoredResource], output: OutputFormat, *, all_namespaces: bool, now: datetime,
           single: bool = False) -> str:  # fmt: skip
    """The listing in one format; `single` (one NAME asked for) prints that document alone in json/yaml."""
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        from meshctl.cli.watch import document_text

        documents = [s.resource.to_document() for s in items]
        if single and len(documents) == 1:
            return document_text(documents[0], output)
        return document_text({"apiVersion": "v1", "kind": "List", "items": documents}, output)
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "SUMMARY", "AGE"]
    if output is OutputFormat.WIDE:
        header.append("SOURCE")
    rows = [header]
    for stored in items:
        resource = stored.resource
        row = ([resource.namespace] if all_namespaces else []) + [resource.name, summary(resource),
                                                                   age(stored.created, now)]  # fmt: skip
        if output is OutputFormat.WIDE:
            row.append(stored.origin)  # the file, or "cluster"
        rows.append(row)
    return table(rows)


def register(app: typer.Typer) -> None:
    from meshctl.cli.completers import resource_kinds, resource_names

    @app.command("get", epilog=GET_EXAMPLES)
    def get_command(
        ctx: typer.Context,
        kind: str = typer.Argument(..., help="A resource type: serviceprofiles (sp), trafficsplits (ts) ...",
                                   autocompletion=resource_kinds),
        names: list[str] | None = typer.Argument(None, help="Only these resources.", autocompletion=resource_names),
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces", help="Those of every namespace."),
    ) -> None:  # fmt: skip
        """List the mesh's resources (applied with `meshctl apply`, or kubectl on Kubernetes)."""
        from datetime import UTC

        from meshctl.resources.names import resolve_kind

        cli: CliContext = ctx.obj
        definition = resolve_kind(kind)
        wanted = list(dict.fromkeys(names or []))
        if all_namespaces and wanted:
            raise UsageError("-A lists every namespace; NAME picks one resource", hint="drop -A, or give -n NAMESPACE")
        namespace = None if all_namespaces else namespace_for(cli, definition, wanted[0] if wanted else None)
        listing = cli.platform.list_resources([definition], namespace)
        for problem in listing.problems:
            cli.stderr.write(f"warning: {problem}\n")
        items = sorted(listing.items, key=lambda s: (s.resource.namespace, s.resource.name))
        if wanted:
            found = {s.resource.name: s for s in items}
            items = [found[n] for n in wanted if n in found]
            missing = [n for n in wanted if n not in found]
        else:
            missing = []
        if items or cli.output in (OutputFormat.JSON, OutputFormat.YAML):
            now = datetime.now(UTC)
            cli.stdout.write(render(items, cli.output, all_namespaces=all_namespaces, now=now,
                                    single=len(wanted) == 1))  # fmt: skip
        elif not missing:
            where = "any namespace" if namespace is None else f"namespace {namespace}"
            cli.stderr.write(f"No {definition.plural or definition.kind} found in {where}.\n")
        if missing:
            plural = definition.plural or definition.kind
            listed = ", ".join(f"{definition.kind.lower()}/{n}" for n in missing)
            raise MeshError(f"{listed} not found in namespace {namespace}",
                            hint=f"`meshctl get {plural} -A` lists them in every namespace")  # fmt: skip
