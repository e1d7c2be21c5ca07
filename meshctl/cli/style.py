"""Colour and width of everything meshctl prints: one decision, one palette.

Colour is on only for a terminal, and the environment has the last word, in this order: `NO_COLOR` (any
non-empty value) turns it off, `FORCE_COLOR` (non-empty, not "0") turns it on even in a pipe, `TERM=dumb`
turns it off. Renderers never pick escape codes themselves: they call `Palette.paint(tone, text)`, which
returns the text unchanged when colour is off, so plain and coloured output hold the same characters.

Imports nothing beyond the standard library: `meshctl --help` and every renderer can use it.
"""

from __future__ import annotations

import os
import shutil
from enum import StrEnum
from typing import TextIO

DEFAULT_WIDTH = 100  # off a terminal: wide enough for every table, and stable for golden files
RESET = "\x1b[0m"


class Tone(StrEnum):
    """What a piece of text means; the palette decides how that looks."""

    GOOD = "good"
    WARN = "warn"
    BAD = "bad"
    ALERT = "alert"  # a failure that must catch the eye
    DIM = "dim"
    STRONG = "strong"
    CODE = "code"  # commands and literals in prose


_SGR = {
    Tone.GOOD: "\x1b[32m",
    Tone.WARN: "\x1b[33m",
    Tone.BAD: "\x1b[31m",
    Tone.ALERT: "\x1b[1m\x1b[31m",
    Tone.DIM: "\x1b[2m",
    Tone.STRONG: "\x1b[1m",
    Tone.CODE: "\x1b[36m",
}


def _set(name: str) -> bool:
    return bool(os.environ.get(name))


def color_enabled(stream: TextIO) -> bool:
    """Whether text written to `stream` may carry colour (and other terminal escapes)."""
    if _set("NO_COLOR"):
        return False
    if _set("FORCE_COLOR") and os.environ["FORCE_COLOR"] != "0":
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def can_redraw(stream: TextIO) -> bool:
    """Whether output may move the cursor to redraw in place: a capable terminal, and no NO_COLOR (whoever
    sets it reads or records the terminal as plain text, where cursor escapes are noise too)."""
    return is_terminal(stream) and os.environ.get("TERM") != "dumb" and not _set("NO_COLOR")


def width(stream: TextIO) -> int:
    """Columns available to a line: the terminal's (or $COLUMNS), else a fixed width for pipes and files."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if is_terminal(stream):
        return max(20, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    return DEFAULT_WIDTH


class Palette:
    """Paints text by tone when colour is on; an identity function when it is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> Palette:
        return cls(color_enabled(stream))

    def paint(self, tone: Tone, text: str) -> str:
        return f"{_SGR[tone]}{text}{RESET}" if self.enabled and text else text

    def __call__(self, tone: Tone, text: str) -> str:
        return self.paint(tone, text)


def visible_length(line: str) -> int:
    """Length of a line as shown, without its SGR escape sequences."""
    length, escape = 0, False
    for char in line:
        if char == "\x1b":
            escape = True
        elif escape:
            escape = char != "m"
        else:
            length += 1
    return length
