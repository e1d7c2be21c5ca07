"""A debug session: the packets of every instance's capture, merged into one pcap file and into one tshark
that decodes them, turned into HTTP events as they come.

`live(deadline)` yields events until the deadline or until every capture has ended; `finish()` then stops
the captures, passes on the packets still in flight and yields the events tshark still had to print, so a
session ended by Ctrl-C or by its deadline leaves the same valid file.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import BinaryIO

from meshctl.debug.events import Correlator, HttpEvent, Leg
from meshctl.debug.pcap import GlobalHeader, PcapError, PcapWriter, default_header
from meshctl.debug.sources import Batch, Ended, Item, Source
from meshctl.debug.tshark import parse_line

DRAIN_S = 20.0  # how long tshark may take to print what it was given (it needs seconds to start)
POLL_S = 0.05


class DebugSession:
    def __init__(self, sources: list[Source], legs: list[Leg], decoder_argv: list[str], out: BinaryIO | None) -> None:
        self.sources = sources
        self.correlator = Correlator(legs)
        self.decoder_argv = decoder_argv
        self.writer = PcapWriter(out) if out is not None else None
        self.ended: dict[str, str | None] = {}  # instance -> why its capture ended (None: as asked)
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.decoder_error: str | None = None
        self.started = time.monotonic()
        self._items: queue.Queue[Item] = queue.Queue()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._diagnostics: deque[str] = deque(maxlen=20)  # tshark's last stderr lines, read as they come
        self._decoder: subprocess.Popen[bytes] | None = None
        self._header: GlobalHeader | None = None
        self._stopped = False

    def start(self) -> None:
        self._decoder = subprocess.Popen(self.decoder_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        threading.Thread(target=self._read_decoder, name="debug-decoder", daemon=True).start()
        threading.Thread(target=self._read_diagnostics, name="debug-decoder-stderr", daemon=True).start()
        for source in self.sources:
            source.start(self._items)

    def _read_decoder(self) -> None:
        assert self._decoder is not None and self._decoder.stdout is not None
        for raw in self._decoder.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)

    def _read_diagnostics(self) -> None:
        assert self._decoder is not None and self._decoder.stderr is not None
        for raw in self._decoder.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line and "Running as user" not in line:
                self._diagnostics.append(line)

    def _pass_on(self, item: Item) -> None:
        if isinstance(item, Ended):
            self.ended[item.instance] = item.reason
            return
        self._packets(item)

    def _packets(self, batch: Batch) -> None:
        if self.writer is not None:
            for record in batch.records:
                self.writer.write(batch.header, record)
            self.writer.flush()
        decoder = self._decoder
        if decoder is None or decoder.stdin is None or self.decoder_error is not None:
            return
        try:
            if self._header is None:
                self._header = batch.header
                decoder.stdin.write(batch.header.raw)
            elif batch.header.linktype != self._header.linktype:
                raise PcapError("captures of different link types")
            decoder.stdin.write(b"".join(r.raw for r in batch.records))
            decoder.stdin.flush()
        except (BrokenPipeError, PcapError) as exc:
            last = self._diagnostics[-1] if self._diagnostics else str(exc)
            self.decoder_error = f"tshark stopped decoding: {last}"

    def _events(self, line: str) -> list[HttpEvent]:
        packet = parse_line(line)
        found = self.correlator.events(packet) if packet is not None else []
        for event in found:
            (self.requests if event.kind == "request" else self.responses)[event.instance] += 1
        return found

    def live(self, deadline: float | None) -> Iterator[HttpEvent]:
        while deadline is None or time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self._pass_on(self._items.get(timeout=POLL_S))
                while True:
                    self._pass_on(self._items.get_nowait())
            while True:
                try:
                    line = self._lines.get_nowait()
                except queue.Empty:
                    break
                if line is not None:
                    yield from self._events(line)
            if len(self.ended) == len(self.sources):
                return

    def finish(self) -> Iterator[HttpEvent]:
        """Stop the captures, pass on what they still wrote, and yield what tshark still prints."""
        self._stop_sources()
        with contextlib.suppress(queue.Empty):
            while True:
                self._pass_on(self._items.get_nowait())
        if self.writer is not None:
            if self.writer.header is None:  # nothing was captured: still a file tshark reads
                self.writer.out.write(default_header().raw)
            self.writer.flush()
        decoder = self._decoder
        if decoder is not None and decoder.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                if self._header is None:
                    decoder.stdin.write(default_header().raw)
                decoder.stdin.close()  # end of the stream: tshark prints the rest and exits
        deadline = time.monotonic() + DRAIN_S
        while decoder is not None and time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            yield from self._events(line)

    def _stop_sources(self) -> None:
        if not self._stopped:
            self._stopped = True
            for source in self.sources:
                source.stop()
            for source in self.sources:
                source.join(5.0)

    def close(self) -> None:
        """Nothing of the session outlives it: captures and tshark are stopped, whatever happened."""
        self._stop_sources()
        decoder = self._decoder
        if decoder is not None and decoder.poll() is None:
            decoder.terminate()
            try:
                decoder.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                decoder.kill()
                decoder.wait(timeout=5.0)
