"""What `routes` and `stat` share around their queries: Prometheus' address, the platform's proxies,
the window check, and printing once or refreshing in place (`--watch`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshError, UsageError
from meshctl.observe.prometheus import PrometheusClient, QueryRecord
from meshctl.observe.window import check_window, parse_interval, parse_window

if TYPE_CHECKING:
    from meshctl.cli.context import CliContext
    from meshctl.platform.base import ProxyInfo


@dataclass(frozen=True)
class Frame:
    """One rendering of a report: the data (stdout) and what to tell the user about it (stderr)."""

    text: str  # table text, or "" for JSON
    document: dict[str, Any] | None  # the JSON document, for -o json
    notes: Sequence[str]


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
    from meshctl.platform.local.platform import LocalPlatform

    platform = cli.platform
    return platform.layout.config if isinstance(platform, LocalPlatform) else None


def open_client(cli: CliContext, url: str, window: str) -> tuple[PrometheusClient, int]:
    """A client whose queries --debug lists on stderr, and the window checked against the scrape interval."""

    def show(record: QueryRecord) -> None:
        cli.stderr.write(f"# {record.kind} {record.seconds * 1000:.1f} ms, {record.series} series: {record.expr}\n")

    window_s = parse_window(window)
    client = PrometheusClient(url, on_query=show if cli.debug else None)
    check_window(window_s, client.scrape_interval_s())
    return client, window_s


def show(cli: CliContext, produce: Callable[[], Frame], *, watch: bool, interval: str) -> None:
    """Print one frame, or with `watch` refresh it every interval until interrupted."""
    if not watch:
        _print(cli, produce())
        return
    every_s = parse_interval(interval)
    if cli.stdout.isatty() and not cli.debug:
        _live(cli, produce, every_s)
        return
    try:
        while True:  # ended by Ctrl-C; each frame is complete, so a pipe sees whole tables or JSON lines
            _print(cli, produce(), compact=True)
            cli.stdout.flush()
            time.sleep(every_s)
    except KeyboardInterrupt:
        return


def _print(cli: CliContext, frame: Frame, compact: bool = False) -> None:
    if frame.document is not None:
        text = json.dumps(frame.document, separators=(",", ":")) if compact else json.dumps(frame.document, indent=2)
        cli.stdout.write(text + "\n")
    else:
        cli.stdout.write(frame.text)
        if compact:
            cli.stdout.write("\n")
    for note in frame.notes:
        cli.stderr.write(f"{note}\n")


def _live(cli: CliContext, produce: Callable[[], Frame], every_s: float) -> None:
    from rich.live import Live
    from rich.text import Text

    def renderable(frame: Frame) -> Text:
        stamp = time.strftime("%H:%M:%S")
        body = json.dumps(frame.document, indent=2) + "\n" if frame.document is not None else frame.text
        notes = "".join(f"{note}\n" for note in frame.notes)
        # Cropped, not wrapped, to the terminal's width, as `watch` does: a wrapped table is unreadable.
        text = f"{body}{notes}\nrefreshed {stamp} every {every_s:g}s · Ctrl-C to stop"
        return Text.from_ansi(text, no_wrap=True, overflow="ellipsis")

    try:
        with Live(renderable(produce()), console=cli.out, auto_refresh=False, transient=False) as live:
            while True:  # ended by Ctrl-C
                time.sleep(every_s)
                live.update(renderable(produce()), refresh=True)
    except KeyboardInterrupt:
        return
