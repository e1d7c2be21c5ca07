"""Where a debug session's packets come from: a capture process's stdout, or the pcap file a debug
sidecar keeps writing. Each source reads on its own thread and hands whole records to one queue."""

from __future__ import annotations

import contextlib
import os
import queue
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from meshctl.debug.pcap import GLOBAL_HEADER_LEN, RECORD_HEADER_LEN, GlobalHeader, PcapError, PcapReader, Record

CHUNK = 65_536
FOLLOW_POLL_S = 0.1


@dataclass(frozen=True)
class Batch:
    instance: str
    header: GlobalHeader
    records: list[Record]


@dataclass(frozen=True)
class Ended:
    instance: str
    reason: str | None  # None: stopped as asked


Item = Batch | Ended


class Source:
    """One instance's packets; `start(out)` begins reading, `stop()` ends it."""

    def __init__(self, instance: str, what: str) -> None:
        self.instance = instance
        self.what = what  # for notes: "capture (tcpdump pid 42)", "debug sidecar (/home/x/debug/books-0.pcap)"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, out: queue.Queue[Item]) -> None:
        self._thread = threading.Thread(target=self._run, args=(out,), name=f"debug-{self.instance}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, out: queue.Queue[Item]) -> None:
        reader = PcapReader()
        reason: str | None = None
        try:
            reason = self._read(reader, out)
        except (OSError, PcapError) as exc:
            reason = str(exc)
        out.put(Ended(self.instance, None if self._stop.is_set() else reason))

    def _read(self, reader: PcapReader, out: queue.Queue[Item]) -> str | None:
        raise NotImplementedError

    @staticmethod
    def _feed(instance: str, reader: PcapReader, data: bytes, out: queue.Queue[Item]) -> None:
        records = reader.feed(data)
        if records and reader.header is not None:
            out.put(Batch(instance, reader.header, records))


class ProcessSource(Source):
    """A capture process writing pcap on its stdout (`tcpdump -U -w -`); `stop()` ends the process."""

    def __init__(self, instance: str, process: subprocess.Popen[bytes], what: str) -> None:
        super().__init__(instance, what)
        self.process = process

    def _read(self, reader: PcapReader, out: queue.Queue[Item]) -> str | None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        while True:
            data = os.read(stdout.fileno(), CHUNK)
            if not data:
                code = self.process.wait()
                return f"the capture ended (exit code {code})"
            self._feed(self.instance, reader, data, out)

    def stop(self) -> None:
        super().stop()
        # SIGTERM: tcpdump flushes what it holds and closes its stdout, which ends the reading thread.
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5.0)


def resume_offset(path: Path) -> int:
    """The end of the last whole record of a pcap file that is still being written (headers only are read)."""
    with path.open("rb") as f:
        header = GlobalHeader.parse(f.read(GLOBAL_HEADER_LEN)) if path.stat().st_size >= GLOBAL_HEADER_LEN else None
        if header is None:
            return 0
        offset, size = GLOBAL_HEADER_LEN, path.stat().st_size
        while offset + RECORD_HEADER_LEN <= size:
            f.seek(offset)
            included = struct.unpack(header.order + "IIII", f.read(RECORD_HEADER_LEN))[2]
            if offset + RECORD_HEADER_LEN + included > size:
                break
            offset += RECORD_HEADER_LEN + included
        return offset


class FollowSource(Source):
    """A pcap file a debug sidecar is writing: what it captures from now on (as `tail -f` would)."""

    def __init__(self, instance: str, path: Path, what: str) -> None:
        super().__init__(instance, what)
        self.path = path
        self.start_at = resume_offset(path)  # taken now, so what happens after the session starts is seen

    def _read(self, reader: PcapReader, out: queue.Queue[Item]) -> str | None:
        with self.path.open("rb") as f:
            head = b""
            while len(head) < GLOBAL_HEADER_LEN:  # a capture that saw nothing yet may not have written it
                head += f.read(GLOBAL_HEADER_LEN - len(head))
                if self._stop.wait(0 if len(head) == GLOBAL_HEADER_LEN else FOLLOW_POLL_S):
                    return None
            self._feed(self.instance, reader, head, out)
            f.seek(max(self.start_at, GLOBAL_HEADER_LEN))
            while not self._stop.is_set():
                data = f.read(CHUNK)
                if data:
                    self._feed(self.instance, reader, data, out)
                    continue
                if f.tell() > self.path.stat().st_size:
                    return f"{self.path} was truncated (the mesh was restarted)"
                time.sleep(FOLLOW_POLL_S)
        return None
