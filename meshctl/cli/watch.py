"""Printing a report once, or refreshing it (`--watch`): in place on a terminal, frame after frame elsewhere.

Commands hand over a `produce` function that queries and renders one `Frame`; this module owns the clock,
the redraw and Ctrl-C. Data goes to stdout, notes about the data to stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meshctl.cli import style
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.observe.window import parse_interval


@dataclass(frozen=True)
class Frame:
    """One rendering of a report: the data (stdout) and what to tell the user about it (stderr)."""

    text: str  # table text, or "" for a document
    document: dict[str, Any] | None  # the document, for -o json / -o yaml
    notes: Sequence[str]


def show(
    cli: CliContext,
    produce: Callable[[], Frame],
    *,
    watch: bool,
    interval: str,
    output: OutputFormat = OutputFormat.JSON,
) -> None:
    """Print one frame, or with `watch` refresh it every interval until interrupted."""
    if not watch:
        _print(cli, produce(), output)
        return
    every_s = parse_interval(interval)
    if style.can_redraw(cli.stdout) and not cli.debug:
        _live(cli, produce, every_s, output)
        return
    try:
        while True:  # ended by Ctrl-C; each frame is complete, so a pipe sees whole tables or documents
            _print(cli, produce(), output, compact=True)
            cli.stdout.flush()
            time.sleep(every_s)
    except KeyboardInterrupt:
        return


def document_text(document: dict[str, Any], output: OutputFormat, compact: bool = False) -> str:
    """A document as JSON (one line when compact, for streams of them) or as YAML (`---` between frames)."""
    if output is OutputFormat.YAML:
        import yaml

        body: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
        return f"---\n{body}" if compact else body
    if compact:
        return json.dumps(document, separators=(",", ":")) + "\n"
    return json.dumps(document, indent=2) + "\n"


def _print(cli: CliContext, frame: Frame, output: OutputFormat, compact: bool = False) -> None:
    if frame.document is not None:
        cli.stdout.write(document_text(frame.document, output, compact))
    else:
        cli.stdout.write(frame.text)
        if compact:
            cli.stdout.write("\n")
    for note in frame.notes:
        cli.stderr.write(f"{note}\n")


def _live(cli: CliContext, produce: Callable[[], Frame], every_s: float, output: OutputFormat) -> None:
    from rich.live import Live
    from rich.text import Text

    def renderable(frame: Frame) -> Text:
        stamp = time.strftime("%H:%M:%S")
        body = document_text(frame.document, output) if frame.document is not None else frame.text
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
