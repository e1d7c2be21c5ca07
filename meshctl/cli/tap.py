"""`meshctl tap`: live requests from every proxy of a workload, or from a capture.

    meshctl tap deploy/webapp -n booksapp --to books --status 5xx
    meshctl tap deploy/webapp -n booksapp --filter 'latency>=100ms or grpc-status!=OK' -o wide
    meshctl tap deploy/webapp -n booksapp --output-file cap.jsonl --har cap.har
    meshctl tap --input-file cap.jsonl --method POST

Filters run in the proxies (the flags and --filter combine with AND); the same language replays a
capture offline. Filter terms: direction=in|out, from=/to=deploy/NAME|ns/NAME, from-id=/to-id=IDENTITY,
method=, authority=, path= (^= prefix, ~ regex), route=, status=5xx|404 (>=, <), grpc-status=14|UNAVAILABLE,
latency>=100ms; combine with and, or, not, ( ).
"""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.cli.style import color_enabled
from meshctl.cli.tapsession import FILTER_HELP
from meshctl.errors import UsageError

if TYPE_CHECKING:
    from meshctl.cli.tapsession import Session
    from meshctl.tapping.capture import CaptureWriter

HELP = """Live requests from every proxy of a workload, or from a capture.

\b
  meshctl tap deploy/webapp -n booksapp --to books --status 5xx
  meshctl tap deploy/webapp -n booksapp --filter 'latency>=100ms or grpc-status!=OK' -o wide
  meshctl tap deploy/webapp -n booksapp --output-file cap.jsonl --har cap.har
  meshctl tap --input-file cap.jsonl --method POST

Filters run in the proxies; the flags and --filter combine with AND. Filter terms: direction=in|out,
from=/to=deploy/NAME|ns/NAME, from-id=/to-id=IDENTITY, method=, authority=, path= (^= prefix, ~ regex),
route=, status=5xx|404 (also >=, <), grpc-status=14|UNAVAILABLE, latency>=100ms; combine them with and,
or, not and parentheses. Ctrl-C ends with a summary (events, drops per instance) on stderr.
"""
TARGET_HELP = "deploy/NAME, pod/NAME, svc/NAME or ns/NAME: every instance of it is tapped."


def output_format(cli: CliContext, output: str | None) -> str:
    """text, wide or json (the global -o table means text)."""
    chosen = output or {OutputFormat.WIDE: "wide", OutputFormat.JSON: "json"}.get(cli.output, "text")
    if chosen == "table":
        chosen = "text"
    if chosen not in ("text", "wide", "json"):
        raise UsageError(f"tap prints text, wide or json, not {chosen!r}", hint="use -o text, -o wide or -o json")
    return chosen


TAP_EXAMPLES = examples(
    ("Every request to and from webapp, live", "meshctl tap deploy/webapp -n booksapp"),
    ("Only failures slower than 100 ms, as JSON lines",
     "meshctl tap deploy/books -n booksapp --status 5xx --min-latency 100ms -o json"),
    ("Save what is seen, then replay it through other filters",
     "meshctl tap deploy/webapp -n booksapp --output-file cap.jsonl"),
    ("Browse the requests in a terminal UI", "meshctl tap deploy/webapp -n booksapp --tui"),
)


def register(app: typer.Typer) -> None:
    @app.command("tap", help=HELP, epilog=TAP_EXAMPLES)
    def tap_command(
        ctx: typer.Context,
        target: str | None = typer.Argument(None, help=TARGET_HELP),
        namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace of the target."),
        to: str | None = typer.Option(None, "--to", help="Only requests to this workload (deploy/NAME or NAME)."),
        method: str | None = typer.Option(None, "--method", help="Only this HTTP method."),
        path: str | None = typer.Option(None, "--path", help="Only paths starting with this."),
        authority: str | None = typer.Option(None, "--authority", help="Only this :authority (exact)."),
        route: str | None = typer.Option(None, "--route", help="Only this ServiceProfile route ([DEFAULT]: none)."),
        status: str | None = typer.Option(None, "--status", help="Only this status or class (404, 5xx)."),
        min_latency: str | None = typer.Option(None, "--min-latency", help="Only requests at least this slow."),
        expression: str | None = typer.Option(None, "--filter", help=FILTER_HELP),
        max_rps: int = typer.Option(0, "--max-rps", help="Requests/s over all instances [default: 10,000 each]."),
        bodies: bool = typer.Option(False, "--bodies", help="Show the first bytes of each body."),
        max_body: str = typer.Option("4KiB", "--max-body", help="With --bodies: bytes per body (≤ 64KiB)."),
        output: str | None = typer.Option(None, "-o", "--output", help="text, wide or json (one object a line)."),
        output_file: Path | None = typer.Option(None, "--output-file", help="Also save the events (JSONL)."),
        input_file: str | None = typer.Option(None, "--input-file", help="Replay a capture ('-': stdin)."),
        har: Path | None = typer.Option(None, "--har", help="At the end, write the requests as HAR 1.2."),
        duration: str | None = typer.Option(None, "--duration", help="Stop after this long (e.g. 30s)."),
        tui: bool = typer.Option(False, "--tui", help="Browse the requests in a terminal UI (? lists its keys)."),
    ) -> None:
        from meshctl.cli.tapsession import Session, observe_request, parse_seconds, parse_size, tap_targets
        from meshctl.tapping.capture import CaptureWriter, read_capture
        from meshctl.tapping.events import Dropped, ResponseEnd, ResponseInit, TapEvent
        from meshctl.tapping.exchange import Exchange
        from meshctl.tapping.filter import flags_filter
        from meshctl.tapping.har import write_har
        from meshctl.tapping.render import render
        from meshctl.tapping.replay import replay
        from meshctl.tapping.store import TapStore
        from meshctl.targets import parse_target

        cli: CliContext = ctx.obj
        fmt = output_format(cli, output)
        ns = namespace or cli.namespace or "default"
        keep = flags_filter(ns, to=to, method=method, path=path, authority=authority, route=route, status=status,
                            min_latency=min_latency, expression=expression)  # fmt: skip
        seconds = parse_seconds(duration, "--duration")
        body_bytes = parse_size(max_body)
        store = TapStore(capacity=100_000 if har else 10_000)
        writer = CaptureWriter(output_file) if output_file is not None else None
        tty = cli.stdout.isatty()
        painted = color_enabled(cli.stdout)
        if tui and not tty:
            raise UsageError("--tui needs a terminal", hint="run it in a terminal, or drop --tui to print lines")

        def show(event: TapEvent, exchange: Exchange | None) -> None:
            line = render(event, exchange, fmt)
            if line is not None:
                # a 5xx response, or an end that failed; the request line cannot know yet
                failed = exchange is not None and (
                    (isinstance(event, ResponseInit) and event.http_status >= 500)
                    or (isinstance(event, ResponseEnd) and exchange.success is False)
                )
                cli.stdout.write(colour(line, painted, failed and fmt != "json") + "\n")
                cli.stdout.flush()
            if writer is not None:
                writer.write(event)

        try:
            if input_file is not None:
                if target is not None:
                    raise UsageError("give a target or --input-file, not both", hint="filter a capture with the flags")
                shown = replay(read_capture(input_file, sys.stdin), keep, store)
                if tui and input_file == "-":
                    raise UsageError("--tui reads keys from the terminal, not a capture from stdin",
                                     hint="save the capture to a file and give --input-file FILE")  # fmt: skip
                if tui:  # the whole capture is read first: a bad line is an error before the screen opens
                    for event, _ in shown:
                        if writer is not None:
                            writer.write(event)
                    from meshctl.tui.app import run_tui

                    run_tui(store, target=Path(input_file).name, match=keep.text, namespace=ns)
                    return
                for event, exchange in shown:
                    show(event, exchange)
                return
            if target is None:
                raise UsageError("tap needs a target", hint="e.g. `meshctl tap deploy/webapp -n booksapp`")
            targets = tap_targets(cli, parse_target(target, ns))
            request = observe_request(keep, max_rps=max_rps, instances=len(targets), bodies=bodies, max_body=body_bytes)
            if tui:
                tap_tui(Session(replace(cli, stderr=io.StringIO()), targets, request, duration_s=seconds, store=store,
                                notes=False), writer, target=target, match=keep.text, namespace=ns)  # fmt: skip
                return
            session = Session(cli, targets, request, duration_s=seconds, store=store, notes=fmt != "json")
            try:
                for event in session.events():
                    if isinstance(event, Dropped) and fmt != "json":
                        store.add(event)
                        continue
                    show(event, store.add(event))
            except KeyboardInterrupt:
                pass
            cli.stderr.write(session.summary() + "\n")
            session.check_reached()
        finally:
            if writer is not None:
                writer.close()
            if har is not None:
                count = write_har(har, [e for e in store.exchanges() if e.complete])
                cli.stderr.write(f"tap: wrote {count} requests to {har} (HAR 1.2)\n")


def tap_tui(session: Session, writer: CaptureWriter | None, *, target: str, match: str, namespace: str) -> None:
    """`--tui`: the session fills the store on the TUI's stream thread; its notes (which proxy failed, drops)
    show in the TUI's status line, and its summary on stderr once the screen is restored."""
    from meshctl.tui.app import run_tui

    def stream() -> None:
        for event in session.events():
            session.store.add(event)
            if writer is not None:
                writer.write(event)

    run_tui(session.store, stream, stop_stream=session.fanin.stop, summary=session.summary, target=target,
            match=match, namespace=namespace)  # fmt: skip
    session.check_reached()


def colour(line: str, enabled: bool, failed: bool) -> str:
    from meshctl.cli.tapsession import colour as paint

    return paint(line, enabled, failed)
