"""`meshctl tap --tui` in a real terminal: tmux runs it against real tap servers (two live, one down),
keys go in with send-keys and the screen comes back with capture-pane."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshctl.tapping.capture import dumps, read_capture
from tests.integration.tap_fleet import Fleet
from tests.unit.tui.feed import steady

pytestmark = pytest.mark.integration
WAIT_S = 20.0


class Terminal:
    """One tmux server of our own (its own socket), one 120×32 window running a command."""

    def __init__(self, tmp_path: Path, command: list[str]) -> None:
        assert shutil.which("tmux"), "tmux is missing: `bash .ci/setup` installs it"
        self.socket = f"meshctl-tui-{tmp_path.name}"
        # The window gets its size first, then the command starts in it (a program started at once may
        # see tmux's default 80×24).
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "tui", "-x", "120", "-y", "32", "sleep 60")
        # Under pytest the pane's environment may carry COLUMNS=80/LINES=24, which programs trust first.
        size = ("-e", "COLUMNS=120", "-e", "LINES=32")
        self.tmux("respawn-pane", "-k", "-t", "tui", "-c", str(tmp_path), *size, *command)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "tui", "-l", text)

    def wait(self, what: str, seen: Callable[[str], bool], timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if seen(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:g}s for {what}; the screen:\n{shown}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(tmp_path / "home", live=2, down=1)
    running.drive(every_s=0.05)
    yield running
    running.close()


def back_to_list(term: Terminal) -> None:
    # Escape alone: a key right behind it in the same write would read as Alt+key.
    term.keys("Escape")
    term.wait("the list", lambda s: "Time         Dir" in s)


def rows(screen: str, word: str, path: str = "/books") -> list[str]:
    return [line for line in screen.splitlines() if f" {word} " in line and path in line]


def test_rows_arrive_and_the_keys_work(fleet: Fleet, tmp_path: Path) -> None:
    tap = [sys.executable, "-m", "meshctl", "--home", str(fleet.home), "tap", "deploy/webapp", "-n", "booksapp",
           "--tui"]  # fmt: skip
    # A shell stays after meshctl exits, so the summary it leaves below the restored screen can be read
    # (a dead pane's last output is not reliably on tmux's screen).
    term = Terminal(tmp_path, ["sh", "-c", f'{shlex.join(tap)}; echo "exit status $?"; sleep 60'])
    try:
        shown = term.wait("rows from both live proxies", lambda s: len(rows(s, "GET")) >= 3 and "POST" in s)
        assert "webapp-2 failed: cannot connect" in shown  # the proxy that is down, named at once
        assert "LIVE" in shown and "drops 0" in shown

        term.keys("/")
        term.wait("the filter bar", lambda s: "Enter applies" in s)
        term.type("method=POST")
        term.keys("Enter")
        shown = term.wait("only POSTs", lambda s: "filter: method=POST" in s and len(rows(s, "POST")) >= 2)
        assert rows(shown, "GET") == []
        assert all(" 500 " in line for line in rows(shown, "POST"))

        term.keys("Space")
        term.wait("the pause", lambda s: "PAUSED" in s)
        frozen = rows(term.screen(), "POST")
        time.sleep(1.0)  # traffic goes on
        assert rows(term.screen(), "POST") == frozen
        term.keys("Space")
        term.wait("live again", lambda s: "LIVE" in s and rows(s, "POST") != frozen)

        term.keys("Enter")
        term.wait("the detail", lambda s: "Identities" in s and "ingress.booksapp.serviceaccount" in s)
        back_to_list(term)
        term.keys("t")
        term.wait("the top view", lambda s: "Success Rate" in s and "Latency per route" in s)
        back_to_list(term)
        term.keys("e")
        term.wait("the export dialog", lambda s: "Export the" in s)
        term.keys("Enter")
        term.wait("the export note", lambda s: "wrote " in s and ".jsonl" in s)
        exported = list(tmp_path.glob("tap-*.jsonl"))
        assert len(exported) == 1
        events = list(read_capture(exported[0]))
        assert events and {json.loads(line)["type"] for line in exported[0].read_text().splitlines()} >= {"req"}

        term.keys("q")
        summary = term.wait("the exit", lambda s: "exit status" in s, timeout=10)
        assert "exit status 0" in summary
        assert "tap: " in summary and "from 2 of 3 proxies" in summary and "webapp-2 failed" in summary
        assert "Traceback" not in summary
    finally:
        term.close()


def test_tui_refuses_a_pipe(fleet: Fleet) -> None:
    done = subprocess.run([sys.executable, "-m", "meshctl", "--home", str(fleet.home), "tap", "deploy/webapp",
                           "-n", "booksapp", "--tui"], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") <= 2 and "--tui needs a terminal" in done.stderr and "Traceback" not in done.stderr


def test_a_capture_replays_into_the_tui_through_the_filters(tmp_path: Path) -> None:
    capture = tmp_path / "cap.jsonl"
    capture.write_text("".join(dumps(event) + "\n" for event in steady(60)))
    tap = [sys.executable, "-m", "meshctl", "--home", str(tmp_path / "home"), "tap", "--input-file", str(capture),
           "--method", "DELETE", "--tui"]  # fmt: skip
    term = Terminal(tmp_path, ["sh", "-c", f'{shlex.join(tap)}; echo "exit status $?"; sleep 60'])
    try:
        shown = term.wait("the replayed rows", lambda s: "12 shown" in s)
        assert len(rows(shown, "DELETE", "/books/3.json")) == 12 and "proxy match: method=DELETE" in shown
        assert rows(shown, "GET", "/books") == []
        term.keys("q")
        term.wait("the exit", lambda s: "exit status 0" in s, timeout=10)
    finally:
        term.close()
