"""Log files of the local mesh's processes, read as `meshctl logs` needs them.

`--tail N` reads blocks from the end of the file until it holds N lines, so a log of gigabytes costs what
its last lines cost. `--follow` is `tail -F`: it polls for new bytes, starts over when the file is
truncated, and finishes the old file then opens the new one when it is replaced (`meshctl up` rotates a
process's log by renaming it to `.1` before it starts the process again).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from meshctl.platform.logs import LogLine, LogQuery, LogStream, line_time, since

BLOCK = 64 * 1024
POLL_S = 0.2
_HEADER = " meshctl up: "  # the line `spawn` writes before each run of the process: not the process's own


def tail_lines(handle: BinaryIO, count: int) -> list[bytes]:
    """The last `count` lines of a file (without newlines), read backwards block by block; the handle is
    left at the end of what was read."""
    handle.seek(0, os.SEEK_END)
    end = position = handle.tell()
    chunks: list[bytes] = []
    newlines = 0
    while position > 0 and newlines <= count:
        step = min(BLOCK, position)
        position -= step
        handle.seek(position)
        chunk = handle.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    handle.seek(end)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    elif lines:
        # A partial last line (being written): it is not a line yet; follow picks it up whole.
        handle.seek(end - len(lines.pop()))
    return lines[-count:] if count else []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


class FileLogStream(LogStream):
    """One process's log file; a follow goes on in the file that replaces it when it is rotated."""

    def __init__(self, instance: str, path: Path, query: LogQuery, *, poll_s: float = POLL_S) -> None:
        super().__init__(instance)
        self.path = path
        self.query = query
        self.poll_s = poll_s
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()

    def lines(self) -> Iterator[LogLine]:
        handle: BinaryIO | None
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            handle = self._wait_for_file() if self.query.follow else None
        if handle is None:
            return
        with contextlib.ExitStack() as stack:
            stack.callback(handle.close)
            backlog = self._backlog(handle)
            if self.query.since_s is not None:
                backlog = since(backlog, time.time() - self.query.since_s)
            yield from backlog
            if self.query.follow:
                yield from self._follow(handle)

    def _line(self, raw: bytes) -> LogLine | None:
        text = _text(raw)
        if _HEADER in text and text.startswith("--- "):
            return None
        return LogLine(self.instance, text, line_time(text))

    def _backlog(self, handle: BinaryIO) -> Iterator[LogLine]:
        if self.query.tail is not None:
            raws: Iterator[bytes] = iter(tail_lines(handle, self.query.tail))
        else:
            raws = self._whole(handle)
        for raw in raws:
            line = self._line(raw)
            if line is not None:
                yield line

    @staticmethod
    def _whole(handle: BinaryIO) -> Iterator[bytes]:
        """Every complete line from the start; the handle stays before a partial last line."""
        while True:
            start = handle.tell()
            raw = handle.readline()
            if not raw:
                return
            if not raw.endswith(b"\n"):
                handle.seek(start)
                return
            yield raw[:-1]

    def _wait_for_file(self) -> BinaryIO | None:
        while not self._stop.wait(self.poll_s):
            with contextlib.suppress(FileNotFoundError):
                return self.path.open("rb")
        return None

    def _follow(self, handle: BinaryIO) -> Iterator[LogLine]:
        """New lines as they are written, across truncation and replacement, until closed."""
        opened = [handle]  # the file being read now: closed however the caller stops reading
        try:
            yield from self._poll(opened)
        finally:
            opened[0].close()

    def _poll(self, opened: list[BinaryIO]) -> Iterator[LogLine]:
        pending = b""
        while not self._stop.is_set():
            handle = opened[0]
            data = handle.read(BLOCK)
            if data:
                *complete, pending = (pending + data).split(b"\n")
                for raw in complete:
                    if (line := self._line(raw)) is not None:
                        yield line
                continue
            try:
                current: os.stat_result | None = os.stat(self.path)
            except FileNotFoundError:
                current = None
            now = os.fstat(handle.fileno())
            if current is not None and (current.st_ino, current.st_dev) != (now.st_ino, now.st_dev):
                # Replaced (rotated): finish the old file (written to until the rename), then the new one.
                rest = handle.read()
                if rest:
                    *complete, pending = (pending + rest).split(b"\n")
                    for raw in complete:
                        if (line := self._line(raw)) is not None:
                            yield line
                if pending and (line := self._line(pending)) is not None:
                    yield line
                pending = b""
                with contextlib.suppress(FileNotFoundError):
                    fresh = self.path.open("rb")
                    handle.close()
                    opened[0] = fresh
                continue
            if current is not None and current.st_size < handle.tell():
                handle.seek(0)  # truncated: what is there now is new
                pending = b""
                continue
            self._stop.wait(self.poll_s)
