"""`meshctl logs` without a mesh: its refusals, and the follow merger that puts lines arriving close together
from several instances in time order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl.cli.app import main
from meshctl.cli.logstream import Failures, follow
from meshctl.errors import UnreachableError
from meshctl.platform.logs import LogLine, LogStream


@pytest.mark.parametrize(("args", "message"), [
    (["logs"], "logs needs a target"),
    (["logs", "deploy/books", "--control"], "--control prints the control plane's logs, not a target's"),
    (["logs", "deploy/books", "--app", "--proxy"], "choose one of --proxy, --app and --control"),
    (["logs", "deploy/books", "-o", "wide"], "`meshctl logs` prints text or json, not -o wide"),
    (["logs", "deploy/books", "--since", "0s"], "--since 0s: expected a duration above zero"),
    (["logs", "deploy/books", "--since", "soon"], "--since: 'soon' is not a duration"),
])  # fmt: skip
def test_refusals_are_one_line_with_a_hint_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(tmp_path), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"Error: {message}") and captured.err.count("\n") == 2
    assert captured.err.splitlines()[1].startswith("hint: ")


def test_without_a_mesh_logs_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "logs", "deploy/books"]) == 3
    assert capsys.readouterr().err.startswith(f"Error: no mesh is running in {tmp_path}")


class Scripted(LogStream):
    """Lines at given delays (seconds after start); then it ends, or fails with `error`."""

    def __init__(self, instance: str, script: list[tuple[float, float | None, str]], error: str | None = None) -> None:
        super().__init__(instance)
        self.script = script
        self.error = error
        self.closed = threading.Event()

    def lines(self) -> Iterator[LogLine]:
        started = time.monotonic()
        for delay, moment, text in self.script:
            if self.closed.wait(max(0.0, started + delay - time.monotonic())):
                return
            yield LogLine(self.instance, text, moment)
        if self.error is not None:
            raise UnreachableError(self.error)

    def close(self) -> None:
        self.closed.set()


def test_follow_orders_lines_that_arrive_close_together_and_keeps_continuations() -> None:
    slow = Scripted("books-1", [(0.10, 10.0, "b1 (earlier, arrives later)")])
    fast = Scripted("books-0", [(0.0, 11.0, "a1"), (0.0, None, "  a1 continued"), (0.6, 12.0, "a2")])
    failures = Failures()
    texts = [line.text for line in follow([slow, fast], failures, hold_s=0.3)]
    assert texts == ["b1 (earlier, arrives later)", "a1", "  a1 continued", "a2"]
    assert failures.reasons == {}


def test_follow_names_an_instance_that_fails_and_goes_on_with_the_others() -> None:
    broken = Scripted("books-1", [(0.0, 1.0, "before")], error="the log of booksapp/books-1 broke off")
    fine = Scripted("books-0", [(0.2, 2.0, "still here")])
    failures = Failures()
    texts = [line.text for line in follow([broken, fine], failures, hold_s=0.05)]
    assert texts == ["before", "still here"]
    assert failures.reasons == {"books-1": "the log of booksapp/books-1 broke off"}


def test_closing_a_follow_closes_every_stream() -> None:
    endless = Scripted("books-0", [(n * 0.05, float(n), f"line {n}") for n in range(1000)])
    lines = follow([endless], Failures(), hold_s=0.01)
    assert next(lines).text == "line 0"
    lines.close()  # what Ctrl-C does
    assert endless.closed.is_set()
