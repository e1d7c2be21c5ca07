"""`meshctl routes`: success rate, RPS and latency percentiles per ServiceProfile route, from Prometheus.

Two PromQL queries per refresh, whatever the number of routes. Prometheus' client library is imported
inside the command, so `meshctl --help` does not pay for it.
"""

from __future__ import annotations

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.errors import UsageError

WINDOW_HELP = "Time window of the rates and percentiles (at least two scrape intervals)."
URL_HELP = "Prometheus that scrapes the proxies [default: the mesh's own]."


def register(app: typer.Typer) -> None:
    @app.command("routes")
    def routes_command(
        ctx: typer.Context,
        target: str = typer.Argument(..., help="deploy/NAME, pod/NAME, svc/NAME or ns/NAME."),
        to: str | None = typer.Option(None, "--to", help="Outbound view: the target's requests to this service."),
        namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace of the target."),
        to_namespace: str | None = typer.Option(None, "--to-namespace", help="Namespace of --to [default: -n]."),
        window: str = typer.Option("1m", "--window", "-w", help=WINDOW_HELP),
        output: OutputFormat | None = typer.Option(None, "-o", "--output", help="table, wide or json."),
        watch: bool = typer.Option(False, "--watch", help="Refresh in place until Ctrl-C."),
        interval: str = typer.Option("2s", "--interval", help="With --watch: time between refreshes."),
        prometheus_url: str | None = typer.Option(
            None, "--prometheus-url", envvar="MESHCTL_PROMETHEUS_URL", help=URL_HELP
        ),
    ) -> None:
        """Per-route golden signals of a workload (inbound), or of its calls to a service (--to)."""
        from meshctl.cli import sources, style, tables
        from meshctl.cli import watch as live
        from meshctl.observe.profiles import profile_routes
        from meshctl.observe.routes import collect_routes
        from meshctl.observe.scopes import route_view
        from meshctl.targets import Kind, parse_target

        cli: CliContext = ctx.obj
        fmt = output or cli.output
        if fmt is OutputFormat.SHORT:
            raise UsageError("routes prints table, wide or json", hint="use -o table, -o wide or -o json")
        ns = namespace or cli.namespace or "default"
        parsed = parse_target(target, ns)
        to_target = parse_target(to, to_namespace or ns, default_kind=Kind.SERVICE) if to else None
        url = sources.prometheus_url(cli, prometheus_url)
        proxies = sources.platform_proxies(cli, explicit_url=prometheus_url is not None)
        view = route_view(parsed, to_target, proxies)
        config = sources.profile_config_dir(cli) if proxies is not None else None
        client, window_s = sources.open_client(cli, url, window)

        def produce() -> live.Frame:
            profiles = profile_routes(config) if config is not None else None
            report = collect_routes(
                client,
                view,
                window_s,
                target=str(parsed),
                namespace=parsed.namespace,
                to=str(to_target) if to_target else None,
                profiles=profiles,
            )
            notes = tables.routes_notes(report)
            if fmt is OutputFormat.JSON:
                return live.Frame("", tables.routes_json(report), notes)
            color = style.color_enabled(cli.stdout)
            return live.Frame(tables.routes_table(report, wide=fmt is OutputFormat.WIDE, color=color), None, notes)

        try:
            live.show(cli, produce, watch=watch, interval=interval)
        finally:
            client.close()
