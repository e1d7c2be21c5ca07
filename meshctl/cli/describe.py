"""`meshctl describe TARGET [-o text|json|yaml] [--no-live]`: what applies to a workload's traffic and where
each setting comes from, plus what its proxies and its clients' proxies say now.

The resource part reads the platform's stored resources (files locally, custom objects on Kubernetes) and
works without any proxy. The live part asks every proxy's admin endpoint for `/config.json` (in parallel,
each with a short timeout): a proxy that cannot be read is named, never waited for.
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import MeshError, UsageError

if TYPE_CHECKING:
    from meshctl.observe.describe import Workload
    from meshctl.platform.base import Platform, ProxyInfo
    from meshctl.targets import Target

ADMIN_PORT = 4191
TIMEOUT_S = 3.0
MAX_PARALLEL = 8

DESCRIBE_EXAMPLES = examples(
    ("Routes, timeouts, retries, splits, faults, access and breakers of books, and where each comes from",
     "meshctl describe deploy/books -n booksapp"),
    ("The same for a service, as data", "meshctl describe svc/books -n booksapp -o json"),
    ("Only what the resources say, without asking the proxies", "meshctl describe books -n booksapp --no-live"),
)  # fmt: skip


def _dump(platform: Platform, proxy: ProxyInfo) -> dict[str, Any] | str:
    """A proxy's /config.json, or why it could not be read (one line)."""
    try:
        with platform.proxy_port(proxy, ADMIN_PORT) as address:
            host, _, port = str(address).rpartition(":")
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=TIMEOUT_S)
            try:
                connection.request("GET", "/config.json")
                response = connection.getresponse()
                body = response.read()
            finally:
                connection.close()
        if response.status != 200:
            return f"/config.json answered {response.status}"
        document = json.loads(body)
        return document if isinstance(document, dict) else "/config.json is not a JSON object"
    except MeshError as exc:
        return exc.message
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__


def read_dumps(platform: Platform, proxies: list[ProxyInfo]) -> dict[str, dict[str, Any] | str]:
    if not proxies:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(proxies)), thread_name_prefix="describe") as pool:
        futures = {p.pod: pool.submit(_dump, platform, p) for p in proxies}
        return {pod: future.result() for pod, future in futures.items()}


def resolve_workload(platform: Platform, target: Target, text: str, proxies: list[ProxyInfo]) -> Workload:
    """The pods a target names and what they are (services, service accounts). A bare name is a service, else
    a deployment; `svc/NAME` with no meshed pod is still described (its resources); anything else with no pod
    is a UsageError."""
    from meshctl.identity import parse_identity
    from meshctl.observe.describe import Workload
    from meshctl.targets import Kind

    explicit = "/" in text
    local = [p for p in proxies if p.namespace == target.namespace]
    services = platform.services_of(local)
    as_service = target.kind is Kind.SERVICE
    if as_service:
        chosen = [p for p in local if target.name in services.get(p.pod, ())]
        if not chosen and not explicit:
            as_service, chosen = False, [p for p in local if p.deployment == target.name]
    elif target.kind is Kind.POD:
        chosen = [p for p in local if p.pod == target.name]
    else:
        chosen = [p for p in local if p.deployment == target.name]
    if not chosen and not (as_service and explicit):
        hint = "`meshctl status` lists the pods; svc/NAME describes a service without meshed pods"
        raise UsageError(f"no meshed pod matches {text} in namespace {target.namespace}", hint=hint)
    name = str(target.name)
    backed = (name,) if as_service else tuple(sorted({s for p in chosen for s in services.get(p.pod, ())}))
    accounts = set()
    for proxy in chosen:
        try:
            accounts.add(parse_identity(proxy.identity)[0])
        except ValueError:
            continue
    label = text if explicit else f"{'svc' if as_service else 'deploy'}/{name}"
    return Workload(target=label, namespace=target.namespace, services=backed, service_accounts=tuple(sorted(accounts)),
                    instances=tuple(sorted(p.pod for p in chosen)),
                    deployments=tuple(sorted({p.deployment for p in chosen})))  # fmt: skip


def register(app: typer.Typer) -> None:
    from meshctl.cli.completers import targets

    @app.command("describe", epilog=DESCRIBE_EXAMPLES)
    def describe_command(
        ctx: typer.Context,
        target: str = typer.Argument(..., help="deploy/NAME, pod/NAME, svc/NAME, or a service's name.",
                                     autocompletion=targets),
        live: bool = typer.Option(True, "--live/--no-live", help="Ask the proxies' admin endpoints for their state."),
    ) -> None:  # fmt: skip
        """What applies to a workload's traffic (routes, timeouts, retries, splits, faults, access, breakers)
        and where each setting comes from."""
        from meshctl.cli.describe_render import document, render_text
        from meshctl.observe.describe import Resources, describe
        from meshctl.observe.describe_live import live_state
        from meshctl.resources import KINDS
        from meshctl.targets import Kind, parse_target

        cli: CliContext = ctx.obj
        parsed = parse_target(target, cli.namespace or "default", default_kind=Kind.SERVICE)
        if parsed.kind is Kind.NAMESPACE or parsed.name is None:
            raise UsageError(f"describe one workload, not {target}", hint="name one: deploy/NAME, pod/NAME or svc/NAME")
        platform = cli.platform
        proxies = platform.proxies()
        workload = resolve_workload(platform, parsed, target, proxies)
        listing = platform.list_resources(list(KINDS.values()), None, missing_ok=True)
        resources = Resources((s.resource, s.origin if s.origin != "cluster" else None) for s in listing.items)
        description = describe(workload, resources, problems=listing.problems)
        for problem in listing.problems:
            cli.stderr.write(f"warning: {problem}\n")
        state = None
        if live:
            wanted = [p for p in proxies if p.pod in workload.instances or p.namespace == workload.namespace]
            dumps = read_dumps(platform, wanted or proxies)
            state = live_state(dumps, workload.instances, workload.services, workload.namespace)
            for pod, why in state.unreachable.items():
                cli.stderr.write(f"warning: the proxy of {pod} could not be read: {why}\n")
        if cli.output in (OutputFormat.JSON, OutputFormat.YAML):
            from meshctl.cli.watch import document_text

            cli.stdout.write(document_text(document(description, state), cli.output))
        else:
            cli.stdout.write(render_text(description, state))
