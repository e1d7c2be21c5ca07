"""Reading several instances' logs at once for `meshctl logs`: each stream guarded (one instance that fails
is named and ends its own stream, not the others), and for `--follow` a thread per instance feeding one
bounded queue, with lines held for a moment so those that arrive close together leave in time order.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field

from meshctl.errors import MeshError
from meshctl.platform.logs import LogLine, LogStream

HOLD_S = 0.25  # how long a followed line waits for an older one from another instance
MAX_HELD = 10_000  # lines held at most: beyond this the oldest leaves at once (memory stays bounded)


@dataclass
class Failures:
    """Instances whose log could not be read, and why (stderr says so; the exit code too)."""

    reasons: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, instance: str, reason: str) -> None:
        with self.lock:
            self.reasons.setdefault(instance, reason)


def guarded(stream: LogStream, failures: Failures) -> Iterator[LogLine]:
    """The stream's lines; a MeshError ends this stream only, and is recorded."""
    try:
        yield from stream.lines()
    except MeshError as exc:
        failures.add(stream.instance, exc.message)
    except OSError as exc:
        failures.add(stream.instance, exc.strerror or str(exc))


_DONE = object()


def follow(
    streams: list[LogStream], failures: Failures, *, hold_s: float = HOLD_S
) -> Generator[LogLine, None, None]:
    """Lines of every stream as they come, in time order within `hold_s`; ends when every stream has ended.
    Closing the generator (Ctrl-C in the caller) closes every stream."""
    lines: queue.Queue[object] = queue.Queue(maxsize=MAX_HELD)  # a slow reader slows the readers of files

    def pump(stream: LogStream) -> None:
        try:
            for line in guarded(stream, failures):
                lines.put(line)
        finally:
            lines.put(_DONE)

    for stream in streams:
        threading.Thread(target=pump, args=(stream,), name=f"logs {stream.instance}", daemon=True).start()
    held: list[tuple[float, int, float, LogLine]] = []  # (time, arrival order, arrived at, line)
    order = itertools.count()
    last: dict[str, float] = {}
    running = len(streams)
    try:
        while running or held:
            try:
                item = lines.get(timeout=hold_s / 2 if held else 0.5)
            except queue.Empty:
                item = None
            if item is _DONE:
                running -= 1
            elif isinstance(item, LogLine):
                moment = last.get(item.instance, float("-inf")) if item.time is None else item.time
                last[item.instance] = max(moment, last.get(item.instance, float("-inf")))
                heapq.heappush(held, (last[item.instance], next(order), time.monotonic(), item))
            ripe = time.monotonic() - hold_s
            while held and (held[0][2] <= ripe or len(held) > MAX_HELD or not running):
                yield heapq.heappop(held)[3]
    finally:
        for stream in streams:
            stream.close()


def everything(streams: Iterable[LogStream], failures: Failures) -> Iterator[Iterator[LogLine]]:
    return (guarded(s, failures) for s in streams)
