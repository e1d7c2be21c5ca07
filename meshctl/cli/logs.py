"""`meshctl logs TARGET [--proxy|--app|--control] [-f] [--since 5m] [--tail N] [-o text|json]`: the logs of
every instance of a target, each line prefixed by its instance, the instances' lines merged in time order.

The platform says where the lines come from (the state directory's log files, or the API server's pods/log);
this module only picks the streams, merges them and prints. `-f` runs until every stream ends or Ctrl-C,
which ends the command cleanly with exit 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

import typer

from meshctl.cli.completers import targets
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.cli.style import Palette, Tone, color_enabled
from meshctl.errors import MeshError, UsageError

LOGS_EXAMPLES = examples(
    ("The proxy logs of every books instance", "meshctl logs deploy/books -n booksapp"),
    ("The app's own log, the last 20 lines of each instance, then follow",
     "meshctl logs deploy/books -n booksapp --app --tail 20 -f"),
    ("What the control plane logged in the last five minutes", "meshctl logs --control --since 5m"),
    ("One JSON object a line, for jq", "meshctl logs pod/books-0 -n booksapp -o json"),
)  # fmt: skip

# Per-instance colours on a terminal: tones of the one palette, none that reads as a failure.
INSTANCE_TONES = (Tone.CODE, Tone.GOOD, Tone.WARN, Tone.STRONG)


class Printer:
    """One line per log line: `INSTANCE  text` (the prefix padded to the widest instance), or JSON."""

    def __init__(self, stream: TextIO, instances: list[str], *, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json
        self.width = max((len(i) for i in instances), default=0)
        paint = Palette(color_enabled(stream))
        self.prefix = {
            name: paint(INSTANCE_TONES[n % len(INSTANCE_TONES)], name.ljust(self.width))
            for n, name in enumerate(instances)
        }

    def write(self, instance: str, text: str, moment: float | None) -> None:
        if self.as_json:
            stamp = None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")
            document = {"instance": instance, "time": stamp, "line": text}
            self.stream.write(json.dumps(document, ensure_ascii=False) + "\n")
        else:
            self.stream.write(f"{self.prefix.get(instance, instance)}  {text}\n")


def _output(cli: CliContext, flag: str | None) -> bool:
    """True for -o json; text is the default (the global -o table means text)."""
    chosen = flag or {OutputFormat.JSON: "json"}.get(cli.output, "text")
    if chosen not in ("text", "table", "json"):
        raise UsageError(f"`meshctl logs` prints text or json, not -o {chosen}", hint="use -o text or -o json")
    return chosen == "json"


def _formats() -> list[str]:
    return ["text", "json"]


def register(app: typer.Typer) -> None:
    @app.command("logs", epilog=LOGS_EXAMPLES)
    def logs_command(
        ctx: typer.Context,
        target: str | None = typer.Argument(
            None, help="deploy/NAME, pod/NAME, svc/NAME or ns/NAME (none with --control).", autocompletion=targets
        ),
        proxy: bool = typer.Option(False, "--proxy", help="The sidecar proxies' logs (the default)."),
        app_: bool = typer.Option(False, "--app", help="The workload's own container or process."),
        control: bool = typer.Option(False, "--control", help="The control plane's logs."),
        follow_: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines until Ctrl-C."),
        since_: str | None = typer.Option(None, "--since", metavar="DURATION", help="Only the last DURATION (5m)."),
        tail: int | None = typer.Option(None, "--tail", min=0, metavar="N", help="Only the last N lines of each."),
        output: str | None = typer.Option(None, "-o", "--output", metavar="FORMAT", autocompletion=_formats,
                                          help="text or json (one object a line)."),  # fmt: skip
    ) -> None:
        """Print the logs of every instance of a target, prefixed by instance (exit 1 when one cannot be read)."""
        from meshctl.cli import logstream
        from meshctl.observe.window import parse_duration
        from meshctl.platform.logs import LogLine, LogQuery, Source, merge
        from meshctl.targets import parse_target

        cli: CliContext = ctx.obj
        as_json = _output(cli, output)
        if proxy + app_ + control > 1:
            raise UsageError("choose one of --proxy, --app and --control", hint="drop all but one")
        source = Source.CONTROL if control else Source.APP if app_ else Source.PROXY
        if control and target is not None:
            raise UsageError("--control prints the control plane's logs, not a target's",
                             hint="drop TARGET, or drop --control")  # fmt: skip
        if target is None and not control:
            raise UsageError("logs needs a target", hint="e.g. `meshctl logs deploy/books -n booksapp`, or --control")
        since_s = parse_duration(since_, "--since") if since_ is not None else None
        if since_s is not None and since_s <= 0:
            raise UsageError(f"--since {since_}: expected a duration above zero", hint="e.g. --since 5m")
        query = LogQuery(source=source, follow=follow_, since_s=since_s, tail=tail)
        chosen = parse_target(target, cli.namespace or "default") if target is not None else None
        streams = cli.platform.log_streams(chosen, query)
        printer = Printer(cli.stdout, [s.instance for s in streams], as_json=as_json)
        failures = logstream.Failures()
        lines: Iterator[LogLine] = (
            logstream.follow(streams, failures) if follow_ else merge(logstream.everything(streams, failures))
        )
        try:
            for line in lines:
                printer.write(line.instance, line.text, line.time)
                if follow_:
                    cli.stdout.flush()
        except KeyboardInterrupt:
            pass  # Ctrl-C ends a follow: what was printed stands
        finally:
            for stream in streams:  # a follow's readers end with their streams
                stream.close()
        cli.stdout.flush()
        if failures.reasons:
            for instance, reason in sorted(failures.reasons.items()):
                cli.stderr.write(f"logs: {instance}: {reason}\n")
            raise MeshError(
                f"{len(failures.reasons)} of {len(streams)} instances' logs could not be read: "
                + ", ".join(sorted(failures.reasons)),
                hint="`meshctl status` shows whether they run",
            )
