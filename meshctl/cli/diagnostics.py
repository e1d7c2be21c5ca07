"""`meshctl diagnostics proxy-metrics TARGET` and `meshctl diagnostics config TARGET`: what each proxy of a
target says about itself on its admin endpoint, as `linkerd diagnostics proxy-metrics` and `istioctl
proxy-config` show it. The raw /metrics of each instance (a `# instance` line before each), and the
proxy's effective config from /config.json: listeners, routes, endpoints, identity and log level.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from meshctl.cli.completers import targets
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples

METRICS_EXAMPLES = examples(
    ("Every books proxy's metrics, as Prometheus scrapes them",
     "meshctl diagnostics proxy-metrics deploy/books -n booksapp"),
    ("One proxy's request counters", "meshctl diagnostics proxy-metrics pod/books-0 -n booksapp | grep ^request_total"),
)  # fmt: skip
CONFIG_EXAMPLES = examples(
    ("Listeners, routes, endpoints, identity and log level of each books proxy",
     "meshctl diagnostics config deploy/books -n booksapp"),
    ("Everything each proxy's admin endpoint reports, for jq",
     "meshctl diagnostics config pod/books-0 -n booksapp -o json"),
)  # fmt: skip

diagnostics = typer.Typer(
    help="What each proxy reports about itself: its metrics and its effective config.",
    rich_markup_mode=None,
    epilog=examples(
        ("Raw metrics of every books proxy", "meshctl diagnostics proxy-metrics deploy/books -n booksapp"),
        ("The effective config of one proxy", "meshctl diagnostics config pod/books-0 -n booksapp"),
    ),
)



@diagnostics.callback(invoke_without_command=True)
def _group(ctx: typer.Context) -> None:
    """Without a sub-command: the help, on stdout (global flags such as -n may still be given)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


TARGET_HELP = "deploy/NAME, pod/NAME, svc/NAME or ns/NAME: the proxies to ask."
_LISTENERS = ("inbound", "outbound", "ingress", "admin", "tap")


def _proxies(cli: CliContext, target: str) -> list[Any]:
    from meshctl.targets import parse_target

    return cli.platform.select_proxies(parse_target(target, cli.namespace or "default"))


@diagnostics.command("proxy-metrics", epilog=METRICS_EXAMPLES)
def proxy_metrics(
    ctx: typer.Context, target: str = typer.Argument(..., help=TARGET_HELP, autocompletion=targets)
) -> None:
    """The raw /metrics of every proxy of a target (exit 1 when one could not be asked)."""
    from meshctl.cli.admin import ask_every, unreachable

    cli: CliContext = ctx.obj
    answers = ask_every(cli.platform, _proxies(cli, target), "/metrics")
    for answer in answers:
        if answer.error is None:
            cli.stdout.write(f"# instance {answer.proxy.namespace}/{answer.instance}\n{answer.text}")
            if not answer.text.endswith("\n"):
                cli.stdout.write("\n")
        else:
            cli.stderr.write(f"diagnostics: {answer.proxy.namespace}/{answer.instance}: {answer.error}\n")
    if any(a.error is not None for a in answers):
        raise unreachable(answers)


@diagnostics.command("config", epilog=CONFIG_EXAMPLES)
def config(
    ctx: typer.Context, target: str = typer.Argument(..., help=TARGET_HELP, autocompletion=targets)
) -> None:
    """The effective config of every proxy of a target (exit 1 when one could not be asked)."""
    from meshctl.cli.admin import ask_every, unreachable

    cli: CliContext = ctx.obj
    answers = ask_every(cli.platform, _proxies(cli, target), "/config.json")
    dumps: list[tuple[Any, dict[str, Any] | None, str | None]] = []
    for answer in answers:
        dump, error = None, answer.error
        if error is None:
            try:
                loaded = json.loads(answer.body)
                dump = loaded if isinstance(loaded, dict) else None
            except ValueError:
                dump = None
            if dump is None:
                error = "/config.json is not a JSON object"
        dumps.append((answer.proxy, dump, error))
    if cli.output in (OutputFormat.JSON, OutputFormat.YAML):
        from meshctl.cli.watch import document_text

        document = {"proxies": [{"instance": p.pod, "namespace": p.namespace, "config": d, "error": e}
                                for p, d, e in dumps]}  # fmt: skip
        cli.stdout.write(document_text(document, cli.output))
    else:
        cli.stdout.write("\n".join(render_config(p.namespace, p.pod, d, e) for p, d, e in dumps))
    if any(e is not None for _, _, e in dumps):
        for proxy, _, error in dumps:
            if error is not None:
                cli.stderr.write(f"diagnostics: {proxy.namespace}/{proxy.pod}: {error}\n")
        raise unreachable([a for a in answers])


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def render_config(namespace: str, pod: str, dump: dict[str, Any] | None, error: str | None) -> str:
    """One proxy's config as a few aligned sections; the JSON has everything."""
    lines = [f"{namespace}/{pod}"]
    if dump is None:
        return "\n".join([*lines, f"  unavailable: {error}"]) + "\n"
    own: dict[str, Any] = dump["config"] if isinstance(dump.get("config"), dict) else {}
    not_after = _get(dump, "certificate", "not_after")
    level, started = dump.get("log_level") or own.get("log_level"), own.get("log_level")
    rows = [
        ("identity", str(own.get("identity") or "-")),
        ("certificate", f"valid until {not_after}" if not_after else "none yet"),
        ("log level", f"{level or '-'}" + (f" (started with {started})" if started and started != level else "")),
        ("version", str(dump.get("version") or "-")),
        ("ready", "yes" if dump.get("ready") else "no"),
        ("snapshot", str(dump.get("snapshot_version") if dump.get("snapshot_version") is not None else "none yet")),
    ]  # fmt: skip
    lines += [f"  {k:<12} {v}" for k, v in rows]
    lines.append("  LISTENERS")
    for name in _LISTENERS:
        listen = _get(own, name, "listen")
        if listen:
            app = _get(own, name, "app")
            beside = f" → app {app} ({_get(own, name, 'app_protocol') or 'http'})" if app else ""
            lines.append(f"    {name:<10} {listen}{beside}")
    routes = dump.get("routes") or {}
    lines.append("  ROUTES" + ("" if routes else "  none (no ServiceProfile names a destination)"))
    for authority, named in sorted(routes.items()):
        for route in named:
            timeout = f"timeout {route['timeout_s']:g}s" if route.get("timeout_s") else "no timeout"
            retry = ", retryable" if route.get("retryable") else ""
            lines.append(f"    {authority}  {route.get('name')}  {timeout}{retry}")
    endpoints = dump.get("endpoints") or {}
    lines.append("  ENDPOINTS" + ("" if endpoints else "  none discovered yet"))
    for authority, found in sorted(endpoints.items()):
        lines.append(f"    {authority}  {', '.join(found) if found else 'no ready endpoint'}")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.add_typer(diagnostics, name="diagnostics")
