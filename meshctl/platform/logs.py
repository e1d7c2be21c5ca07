"""The logs of the mesh's instances, as both platforms serve them: one stream of lines per instance.

A platform turns a target and a `LogQuery` into `LogStream`s (the local one reads the state directory's log
files, Kubernetes the pods/log API); `merge` puts the lines of several instances in time order where they
carry a timestamp, and a line without one (a traceback's continuation) stays behind the line before it.
Every stream yields lines lazily, so memory does not grow with the size of a log.
"""

from __future__ import annotations

import heapq
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Source(StrEnum):
    """Whose logs: the sidecar proxy, the workload's own container, or the control plane."""

    PROXY = "proxy"
    APP = "app"
    CONTROL = "control"


@dataclass(frozen=True)
class LogQuery:
    source: Source = Source.PROXY
    follow: bool = False
    since_s: float | None = None  # only lines of the last N seconds (lines without a time follow their leader)
    tail: int | None = None  # only the last N lines of each instance


@dataclass(frozen=True)
class LogLine:
    instance: str
    text: str  # without its newline (and, on Kubernetes, without the API's timestamp prefix)
    time: float | None  # epoch seconds, when the line carries a timestamp


class LogStream(ABC):
    """The lines of one instance; with `LogQuery.follow` it waits for more until `close()`."""

    def __init__(self, instance: str) -> None:
        self.instance = instance

    @abstractmethod
    def lines(self) -> Iterator[LogLine]:
        """Every line asked for, oldest first; a follow stream ends only when closed (or its source ends)."""

    def close(self) -> None:  # noqa: B027 (streams that hold nothing open need not close)
        """Stop a follow (from another thread) and let go of files and connections."""


# "2026-11-29T08:41:32.123Z", "2026-11-29 08:41:32,123", "2026-11-29T08:41:32.123456789+00:00": the proxy's,
# the control plane's (Python logging) and the Kubernetes API's stamps, at the start of a line.
_STAMP = re.compile(
    r"^(?:--- )?(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<clock>\d{2}:\d{2}:\d{2})(?:[.,](?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def line_time(text: str) -> float | None:
    """The epoch seconds of a line's leading timestamp, None without one. A stamp without a zone is local
    time, as Python's logging writes it."""
    found = _STAMP.match(text)
    if found is None:
        return None
    fraction = float(f"0.{found['fraction']}") if found["fraction"] else 0.0
    try:
        moment = datetime.strptime(f"{found['date']} {found['clock']}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    zone = found["zone"]
    if zone is None:
        return time.mktime(moment.timetuple()) + fraction
    if zone == "Z":
        offset = 0
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return moment.replace(tzinfo=UTC).timestamp() - offset + fraction


def timed(instance: str, texts: Iterable[str]) -> Iterator[LogLine]:
    """Lines with the time of their stamp; a line without one gets None."""
    for text in texts:
        yield LogLine(instance, text, line_time(text))


def since(lines: Iterable[LogLine], cutoff: float) -> Iterator[LogLine]:
    """The lines at or after `cutoff`; a line without a time is kept with the line it follows."""
    keep = False
    for line in lines:
        if line.time is not None:
            keep = line.time >= cutoff
        if keep:
            yield line


def merge(streams: Iterable[Iterable[LogLine]]) -> Iterator[LogLine]:
    """The lines of several instances in time order, lazily. A line without a time sorts with the line
    before it in its own stream, so a multi-line message is never split by another instance's lines."""

    def keyed(index: int, lines: Iterable[LogLine]) -> Iterator[tuple[float, int, int, LogLine]]:
        last = float("-inf")
        for seq, line in enumerate(lines):
            if line.time is not None:
                last = max(last, line.time)  # a clock step back must not reorder one instance's own lines
            yield last, index, seq, line

    for *_, line in heapq.merge(*(keyed(i, s) for i, s in enumerate(streams))):
        yield line
