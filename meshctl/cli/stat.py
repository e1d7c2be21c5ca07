"""`meshctl stat`: the golden signals of deployments, pods or namespaces, from Prometheus.

Three PromQL queries per refresh (counts, latency buckets, saturation), whatever the number of workloads.
"""

from __future__ import annotations

import typer

from meshctl.cli.completers import namespace_names, targets
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.cli.routes import URL_HELP, WINDOW_HELP
from meshctl.errors import UsageError

STAT_EXAMPLES = examples(
    ("Golden signals of every deployment of booksapp", "meshctl stat deploy -n booksapp"),
    ("One deployment's pods", "meshctl stat pod -n booksapp"),
    ("Every workload of every namespace", "meshctl stat deploy -A"),
    ("One row per namespace, as JSON", "meshctl stat ns -o json"),
)


def register(app: typer.Typer) -> None:
    @app.command("stat", epilog=STAT_EXAMPLES)
    def stat_command(
        ctx: typer.Context,
        target: str = typer.Argument(
            ..., help="deploy, deploy/NAME, pod, pod/NAME, ns or ns/NAME.", autocompletion=targets
        ),
        namespace: str | None = typer.Option(
            None, "-n", "--namespace", metavar="NAME", help="Namespace of the target.", autocompletion=namespace_names
        ),
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces", help="Workloads of every namespace."),
        window: str = typer.Option("1m", "--window", "-w", help=WINDOW_HELP),
        watch: bool = typer.Option(False, "--watch", help="Refresh in place until Ctrl-C."),
        interval: str = typer.Option("2s", "--interval", help="With --watch: time between refreshes."),
        prometheus_url: str | None = typer.Option(
            None, "--prometheus-url", envvar="MESHCTL_PROMETHEUS_URL", help=URL_HELP
        ),
    ) -> None:
        """Success rate, RPS, latency percentiles, in-flight requests and TCP connections per workload."""
        from dataclasses import replace

        from meshctl.cli import sources, style, tables
        from meshctl.cli import watch as live
        from meshctl.observe.scopes import workload_view
        from meshctl.observe.stat import collect_stat
        from meshctl.targets import Kind, parse_target

        cli: CliContext = ctx.obj
        fmt = cli.output
        parsed = parse_target(target, namespace or cli.namespace or "default")
        if all_namespaces:
            if parsed.name is not None:
                raise UsageError(f"-A lists every {parsed.kind.value}; {target} names one", hint="drop -A")
            if parsed.kind is Kind.NAMESPACE:
                all_namespaces = False  # `ns` already means every namespace
        url = sources.prometheus_url(cli, prometheus_url)
        proxies = sources.platform_proxies(cli, explicit_url=prometheus_url is not None)
        scoped = parsed
        if all_namespaces:
            # Every namespace: the platform's proxies of every namespace, grouped by namespace and name.
            scoped = replace(parsed, namespace="")
        view = workload_view(scoped, proxies)
        client, window_s, _ = sources.open_client(cli, url, window)
        kind = parsed.kind.value
        report_namespace = None if all_namespaces or parsed.kind is Kind.NAMESPACE else parsed.namespace

        def produce() -> live.Frame:
            report = collect_stat(client, view, window_s, kind=kind, namespace=report_namespace)
            notes = tables.stat_notes(report)
            if fmt in (OutputFormat.JSON, OutputFormat.YAML):
                return live.Frame("", tables.stat_json(report), notes)
            return live.Frame(tables.stat_table(report, color=style.color_enabled(cli.stdout)), None, notes)

        try:
            live.show(cli, produce, watch=watch, interval=interval, output=fmt)
        finally:
            client.close()
