"""Where `routes` and `stat` get their data: Prometheus' address, the platform's proxies and profiles, and
a client whose window is checked against the scrape interval. Printing is meshctl.cli.watch's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshctl.cli.context import CliContext
from meshctl.errors import MeshError, UsageError
from meshctl.observe.prometheus import PrometheusClient, QueryRecord
from meshctl.observe.window import check_window, parse_window

if TYPE_CHECKING:
    from meshctl.platform.base import ProxyInfo


def prometheus_url(cli: CliContext, flag: str | None) -> str:
    """--prometheus-url, else the platform's Prometheus; without either, say how to get one."""
    if flag:
        if not flag.startswith(("http://", "https://")):
            raise UsageError(f"--prometheus-url {flag!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:9090")
        return flag.rstrip("/")
    try:
        return cli.platform.prometheus_url()
    except MeshError as exc:
        hint = f"{exc.hint}, or " if exc.hint else ""
        raise type(exc)(
            f"{exc.message}, so there is no Prometheus to ask",
            hint=f"{hint}pass --prometheus-url URL; `meshctl check` says what is wrong",
            exit_code=exc.exit_code,
        ) from None


def platform_proxies(cli: CliContext, explicit_url: bool) -> list[ProxyInfo] | None:
    """The mesh's proxies; None when only --prometheus-url is known (no local mesh to ask)."""
    try:
        return cli.platform.proxies()
    except MeshError:
        if explicit_url:
            return None
        raise


def profile_config_dir(cli: CliContext) -> Any:
    """Where the platform keeps ServiceProfiles as files (the local platform), else None."""
    return cli.platform.resource_dir()


def open_client(cli: CliContext, url: str, window: str) -> tuple[PrometheusClient, int, float | None]:
    """A client whose queries --debug lists on stderr, the window checked against the scrape interval, and
    that interval (None when Prometheus does not say)."""

    def show(record: QueryRecord) -> None:
        cli.stderr.write(f"# {record.kind} {record.seconds * 1000:.1f} ms, {record.series} series: {record.expr}\n")

    window_s = parse_window(window)
    where = None
    if cli.platform_name.value == "kubernetes" and url == cli.platform.prometheus_url():
        # The platform's relay to the cluster's Prometheus: its loopback URL alone would puzzle a user.
        where = "meshctl-system/meshctl-prometheus (through the API server)"
    client = PrometheusClient(url, on_query=show if cli.debug else None, where=where)
    interval_s = client.scrape_interval_s()
    check_window(window_s, interval_s)
    return client, window_s, interval_s
