"""Log lines as `meshctl logs` reads them: timestamps of every writer, the time-ordered merge of several
instances, --since, --tail read from the end of a file, and a follow across truncation and rotation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from meshctl.platform.local.logs import FileLogStream, tail_lines
from meshctl.platform.logs import LogLine, LogQuery, line_time, merge, since, timed


def test_timestamps_of_the_proxy_the_control_plane_the_api_and_the_run_header() -> None:
    epoch = datetime(2026, 11, 29, 8, 41, 32, tzinfo=UTC).timestamp()
    assert line_time("2026-11-29T08:41:32.123456789Z books line") == pytest.approx(epoch + 0.123456789)
    assert line_time("2026-11-29T09:41:32.5+01:00 x") == pytest.approx(epoch + 0.5)
    assert line_time("--- 2026-11-29T08:41:32Z meshctl up: python -m x") == epoch
    naive = datetime(2026, 11, 29, 8, 41, 32).timestamp()  # no zone: local time, as Python's logging writes
    assert line_time("2026-11-29T08:41:32.250 INFO proxy meshctl.proxy: up") == pytest.approx(naive + 0.25)
    assert line_time("2026-11-29 08:41:32,250 INFO meshctl.control: up") == pytest.approx(naive + 0.25)
    assert line_time("Traceback (most recent call last):") is None
    assert line_time("2026-13-45T99:00:00Z not a date") is None


def test_merge_orders_instances_by_time_and_keeps_continuations_with_their_line() -> None:
    books = list(timed("books-0", ["2026-01-01T00:00:01Z a1", "  continued a1", "2026-01-01T00:00:04Z a2"]))
    authors = list(timed("authors-0", ["2026-01-01T00:00:02Z b1", "2026-01-01T00:00:03Z b2"]))
    merged = [line.text.split()[-1] for line in merge([iter(books), iter(authors)])]
    assert merged == ["a1", "a1", "b1", "b2", "a2"]


def test_merge_is_lazy_so_a_huge_log_is_never_held_whole() -> None:
    taken: list[int] = []

    def endless(name: str, start: int) -> Iterator[LogLine]:
        n = start
        while True:
            taken.append(n)
            yield LogLine(name, str(n), float(n))
            n += 2

    merged = merge([endless("even", 0), endless("odd", 1)])
    assert [next(merged).text for _ in range(6)] == ["0", "1", "2", "3", "4", "5"]
    assert len(taken) <= 8


def test_since_keeps_the_lines_after_the_cutoff_with_their_continuations() -> None:
    lines = timed("p", ["2026-01-01T00:00:01Z old", "  old detail", "2026-01-01T00:00:05Z new", "  new detail"])
    cutoff = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC).timestamp()
    assert [line.text for line in since(lines, cutoff)] == ["2026-01-01T00:00:05Z new", "  new detail"]


class CountingReader:
    """A file handle that counts the bytes read through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.read_bytes += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


def test_tail_reads_from_the_end_of_a_huge_file(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    line = b"2026-01-01T00:00:00.000 INFO proxy meshctl.proxy: " + b"x" * 200 + b"\n"
    with log.open("wb") as out:
        for _ in range(64):  # 64 x 1 MiB of lines
            out.write(line * (1024 * 1024 // len(line)))
        out.write(b"2026-01-01T00:00:01.000 INFO last one\n")
    with log.open("rb") as handle:
        counting = CountingReader(handle)
        lines = tail_lines(counting, 3)  # type: ignore[arg-type]
    assert lines[-1] == b"2026-01-01T00:00:01.000 INFO last one" and len(lines) == 3
    assert counting.read_bytes <= 64 * 1024  # one block, not 64 MiB


def test_tail_leaves_a_half_written_line_to_the_follow(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    log.write_bytes(b"one\ntwo\nthr")
    with log.open("rb") as handle:
        assert tail_lines(handle, 5) == [b"one", b"two"]
        assert handle.tell() == len(b"one\ntwo\n")
        assert tail_lines(handle, 0) == []


def test_the_run_header_of_meshctl_up_is_not_a_line_of_the_process(tmp_path: Path) -> None:
    log = tmp_path / "books-0.proxy.log"
    log.write_text("--- 2026-01-01T00:00:00Z meshctl up: python -m meshctl.proxy\n2026-01-01T00:00:01.000 INFO up\n")
    lines = [line.text for line in FileLogStream("books-0", log, LogQuery()).lines()]
    assert lines == ["2026-01-01T00:00:01.000 INFO up"]


def _collect(stream: FileLogStream, into: list[str], done: threading.Event) -> None:
    for line in stream.lines():
        into.append(line.text)
    done.set()


def _until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_follow_survives_truncation_and_rotation_and_ends_when_closed(tmp_path: Path) -> None:
    log = tmp_path / "books-0.proxy.log"
    log.write_text("before\n")
    stream = FileLogStream("books-0", log, LogQuery(follow=True, tail=1), poll_s=0.02)
    seen: list[str] = []
    done = threading.Event()
    threading.Thread(target=_collect, args=(stream, seen, done), daemon=True).start()
    _until(lambda: seen == ["before"])
    with log.open("a") as out:
        out.write("appended\nhalf")
        out.flush()
        _until(lambda: len(seen) == 2)
        out.write(" a line\n")
    _until(lambda: len(seen) == 3)
    log.write_text("after truncation\n")  # shorter than what was read: read again from the start
    _until(lambda: len(seen) == 4)
    with log.open("a") as out:
        out.write("last of the old file\n")
    os.replace(log, log.with_name(log.name + ".1"))  # `meshctl up` rotates by renaming, then starts anew
    log.write_text("first of the new file\n")
    _until(lambda: len(seen) == 6)
    stream.close()
    assert done.wait(5)
    assert seen == ["before", "appended", "half a line", "after truncation", "last of the old file",
                    "first of the new file"]  # fmt: skip


def test_follow_of_a_log_not_written_yet_waits_for_it(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    stream = FileLogStream("later", log, LogQuery(follow=True), poll_s=0.02)
    seen: list[str] = []
    done = threading.Event()
    threading.Thread(target=_collect, args=(stream, seen, done), daemon=True).start()
    time.sleep(0.1)
    log.write_text("hello\n")
    _until(lambda: seen == ["hello"])
    stream.close()
    assert done.wait(5) and seen == ["hello"]
    assert list(FileLogStream("absent", tmp_path / "absent.log", LogQuery()).lines()) == []
