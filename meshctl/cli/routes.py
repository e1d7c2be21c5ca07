"""`meshctl routes`: success rate, RPS and latency percentiles per ServiceProfile route, from Prometheus.

Two PromQL queries per refresh, whatever the number of routes. Prometheus' client library is imported
inside the command, so `meshctl --help` does not pay for it.
"""

from __future__ import annotations

import typer

from meshctl.cli.completers import namespace_names, targets
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import UsageError

WINDOW_HELP = "Time window of the rates and percentiles (at least two scrape intervals)."
URL_HELP = "Prometheus that scrapes the proxies [default: the mesh's own]."


ROUTES_EXAMPLES = examples(
    ("Success, RPS and latency of each route webapp serves", "meshctl routes deploy/webapp -n booksapp"),
    ("Webapp's calls to the books service, per route", "meshctl routes deploy/webapp --to svc/books -n booksapp"),
    ("Effective (after retries) and actual success side by side", "meshctl routes deploy/books -n booksapp -o wide"),
    ("Refreshed every 2 s over the last 5 minutes", "meshctl routes deploy/webapp -n booksapp -w 5m --watch"),
    ("The routes every deployment of every namespace serves", "meshctl routes deploy -A"),
)


def register(app: typer.Typer) -> None:
    @app.command("routes", epilog=ROUTES_EXAMPLES)
    def routes_command(
        ctx: typer.Context,
        target: str = typer.Argument(..., help="deploy/NAME, pod/NAME, svc/NAME or ns/NAME.", autocompletion=targets),
        to: str | None = typer.Option(
            None, "--to", help="Outbound view: the target's requests to this service.", autocompletion=targets
        ),
        namespace: str | None = typer.Option(
            None, "-n", "--namespace", metavar="NAME", help="Namespace of the target.", autocompletion=namespace_names
        ),
        to_namespace: str | None = typer.Option(
            None,
            "--to-namespace",
            metavar="NAME",
            help="Namespace of --to [default: -n].",
            autocompletion=namespace_names,
        ),
        all_namespaces: bool = typer.Option(
            False, "-A", "--all-namespaces", help="With deploy or pod and no name: those of every namespace."
        ),
        window: str = typer.Option("1m", "--window", "-w", help=WINDOW_HELP),
        watch: bool = typer.Option(False, "--watch", help="Refresh in place until Ctrl-C."),
        interval: str = typer.Option("2s", "--interval", help="With --watch: time between refreshes."),
        prometheus_url: str | None = typer.Option(
            None, "--prometheus-url", envvar="MESHCTL_PROMETHEUS_URL", help=URL_HELP
        ),
    ) -> None:
        """Per-route golden signals of a workload (inbound), or of its calls to a service (--to)."""
        from dataclasses import replace

        from meshctl.cli import sources, style, tables
        from meshctl.cli import watch as live
        from meshctl.observe.profiles import profile_routes
        from meshctl.observe.routes import collect_routes
        from meshctl.observe.scopes import route_view
        from meshctl.targets import Kind, parse_target

        cli: CliContext = ctx.obj
        fmt = cli.output
        ns = namespace or cli.namespace or "default"
        parsed = parse_target(target, ns)
        to_target = parse_target(to, to_namespace or ns, default_kind=Kind.SERVICE) if to else None
        if all_namespaces:
            if parsed.name is not None or parsed.kind not in (Kind.DEPLOYMENT, Kind.POD) or to_target is not None:
                raise UsageError(
                    f"-A lists the routes of every deploy or pod of every namespace, not of {target}"
                    + (" --to" if to_target else ""),
                    hint="use `meshctl routes deploy -A`, or drop -A",
                )
            parsed = replace(parsed, namespace="")  # an empty namespace selects every one
        url = sources.prometheus_url(cli, prometheus_url)
        proxies = sources.platform_proxies(cli, explicit_url=prometheus_url is not None)
        view = route_view(parsed, to_target, proxies)
        config = sources.profile_config_dir(cli) if proxies is not None else None
        client, window_s, interval_s = sources.open_client(cli, url, window)

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
                scrape_interval_s=interval_s,
            )
            notes = tables.routes_notes(report)
            if fmt in (OutputFormat.JSON, OutputFormat.YAML):
                return live.Frame("", tables.routes_json(report), notes)
            color = style.color_enabled(cli.stdout)
            return live.Frame(tables.routes_table(report, wide=fmt is OutputFormat.WIDE, color=color), None, notes)

        try:
            live.show(cli, produce, watch=watch, interval=interval, output=fmt)
        finally:
            client.close()
