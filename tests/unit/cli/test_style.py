"""One decision for colour: NO_COLOR, FORCE_COLOR, TERM=dumb and whether the stream is a terminal."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator

import pytest

from meshctl.cli import style
from meshctl.cli.style import Palette, Tone


@pytest.fixture
def terminal() -> Iterator[io.TextIOWrapper]:
    leader, follower = pty.openpty()
    with open(follower, "w") as stream:
        yield stream
    os.close(leader)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def test_colour_on_a_terminal_only(terminal: io.TextIOWrapper) -> None:
    assert style.color_enabled(terminal)
    assert not style.color_enabled(io.StringIO())


@pytest.mark.parametrize(
    ("env", "on_tty", "in_pipe"),
    [
        ({"NO_COLOR": "1"}, False, False),
        ({"NO_COLOR": ""}, True, False),  # an empty NO_COLOR does not count
        ({"FORCE_COLOR": "1"}, True, True),
        ({"FORCE_COLOR": "0"}, True, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),  # NO_COLOR wins
        ({"TERM": "dumb"}, False, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, True, True),
    ],
)
def test_environment_decides(
    monkeypatch: pytest.MonkeyPatch, terminal: io.TextIOWrapper, env: dict[str, str], on_tty: bool, in_pipe: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert style.color_enabled(terminal) is on_tty
    assert style.color_enabled(io.StringIO()) is in_pipe


def test_dumb_terminal_is_never_redrawn(monkeypatch: pytest.MonkeyPatch, terminal: io.TextIOWrapper) -> None:
    assert style.can_redraw(terminal)
    monkeypatch.setenv("TERM", "dumb")
    assert not style.can_redraw(terminal)
    assert not style.can_redraw(io.StringIO())
    monkeypatch.delenv("TERM")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not style.can_redraw(terminal)  # no cursor escapes either


def test_width_of_pipes_is_fixed_and_columns_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert style.width(io.StringIO()) == style.DEFAULT_WIDTH
    monkeypatch.setenv("COLUMNS", "72")
    assert style.width(io.StringIO()) == 72


def test_palette_off_returns_the_same_text() -> None:
    assert Palette(False).paint(Tone.BAD, "×") == "×"
    painted = Palette(True).paint(Tone.BAD, "×")
    assert painted.startswith("\x1b[31m") and painted.endswith("\x1b[0m")
    assert style.visible_length(painted) == 1
