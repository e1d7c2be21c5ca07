"""`meshctl top`: the busiest paths of a workload, live — Linkerd's `viz top`, over every instance.

On a terminal the table is redrawn in place every --interval; otherwise each refresh is printed as plain
lines (and the last one when it stops). The filter flags are `meshctl tap`'s.
"""

from __future__ import annotations

import sys
import time

import typer

from meshctl.cli.context import CliContext
from meshctl.cli.examples import examples
from meshctl.cli.style import can_redraw
from meshctl.cli.tap import TARGET_HELP
from meshctl.cli.tapsession import FILTER_HELP
from meshctl.errors import UsageError

HOME_CLEAR = "\x1b[H\x1b[2J"


TOP_EXAMPLES = examples(
    ("The busiest paths of webapp, refreshed in place", "meshctl top deploy/webapp -n booksapp"),
    ("Only what goes to books", "meshctl top deploy/webapp -n booksapp --to deploy/books"),
)


def register(app: typer.Typer) -> None:
    @app.command("top", epilog=TOP_EXAMPLES)
    def top_command(
        ctx: typer.Context,
        target: str | None = typer.Argument(None, help=TARGET_HELP),
        namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace of the target."),
        to: str | None = typer.Option(None, "--to", help="Only requests to this workload (deploy/NAME or NAME)."),
        method: str | None = typer.Option(None, "--method", help="Only this HTTP method."),
        path: str | None = typer.Option(None, "--path", help="Only paths starting with this."),
        authority: str | None = typer.Option(None, "--authority", help="Only this :authority (exact)."),
        route: str | None = typer.Option(None, "--route", help="Only this ServiceProfile route."),
        status: str | None = typer.Option(None, "--status", help="Only this status or class (404, 5xx)."),
        min_latency: str | None = typer.Option(None, "--min-latency", help="Only requests at least this slow."),
        expression: str | None = typer.Option(None, "--filter", help=FILTER_HELP),
        max_rps: int = typer.Option(0, "--max-rps", help="Requests/s over all instances [default: 10,000 each]."),
        hide_sources: bool = typer.Option(False, "--hide-sources", help="Merge rows of every source."),
        rows: int = typer.Option(40, "--rows", help="At most this many rows."),
        interval: str = typer.Option("1s", "--interval", help="Time between refreshes."),
        duration: str | None = typer.Option(None, "--duration", help="Stop after this long (e.g. 30s)."),
        input_file: str | None = typer.Option(None, "--input-file", help="Aggregate a capture ('-': stdin)."),
    ) -> None:
        """The busiest paths (source, destination, method, path) with counts, latencies and success."""
        import shutil

        from meshctl.cli.tapsession import Session, observe_request, parse_seconds, tap_targets
        from meshctl.tapping.capture import read_capture
        from meshctl.tapping.events import ResponseEnd
        from meshctl.tapping.filter import flags_filter
        from meshctl.tapping.replay import replay
        from meshctl.tapping.store import TapStore
        from meshctl.tapping.top import TopTable, table_lines
        from meshctl.targets import parse_target

        cli: CliContext = ctx.obj
        ns = namespace or cli.namespace or "default"
        keep = flags_filter(ns, to=to, method=method, path=path, authority=authority, route=route, status=status,
                            min_latency=min_latency, expression=expression)  # fmt: skip
        every = parse_seconds(interval, "--interval") or 1.0
        seconds = parse_seconds(duration, "--duration")
        table = TopTable(hide_sources=hide_sources)
        store = TapStore()
        tty = can_redraw(cli.stdout)  # redraw in place only where escape codes are welcome (not NO_COLOR)
        shown: list[str] = []

        def draw() -> None:
            width = shutil.get_terminal_size().columns if tty else None
            lines = table_lines(table.rows(rows), hide_sources=hide_sources, width=width)
            if tty:
                head = f"{table.total} requests   (Ctrl-C to quit)"
                cli.stdout.write(HOME_CLEAR + head + "\n\n" + "\n".join(lines) + "\n")
            elif lines != shown:  # plain lines: each changed table once, a blank line between
                cli.stdout.write(("\n" if shown else "") + "\n".join(lines) + "\n")
                shown[:] = lines
            cli.stdout.flush()

        if input_file is not None:
            if target is not None:
                raise UsageError("give a target or --input-file, not both", hint="filter a capture with the flags")
            for event, exchange in replay(read_capture(input_file, sys.stdin), keep, store):
                if isinstance(event, ResponseEnd) and exchange is not None:
                    table.add(exchange)
            draw()
            return
        if target is None:
            raise UsageError("top needs a target", hint="e.g. `meshctl top deploy/webapp -n booksapp`")
        targets = tap_targets(cli, parse_target(target, ns))
        request = observe_request(keep, max_rps=max_rps, instances=len(targets), bodies=False, max_body=0)
        session = Session(cli, targets, request, duration_s=seconds, store=store)
        next_draw = time.monotonic() + every
        try:
            for event in session.events():
                exchange = store.add(event)
                if isinstance(event, ResponseEnd) and exchange is not None:
                    table.add(exchange)
                if time.monotonic() >= next_draw:
                    draw()
                    next_draw = time.monotonic() + every
        except KeyboardInterrupt:
            pass
        draw()
        cli.stderr.write(session.summary() + "\n")
        session.check_reached()
