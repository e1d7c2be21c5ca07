"""The traffic generator: a bounded, open-loop mix of booksapp requests sent to the ingress.

Requests leave on a fixed schedule (rps); a small pool of workers sends them. When every worker is busy
the request is skipped and counted, so a slow mesh never makes the generator pile up load.
"""

from __future__ import annotations

import argparse
import http.client
import queue
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from urllib.parse import urlsplit

from meshctl.demo.catalogue import AUTHORS, BOOKS
from meshctl.demo.web import log

MAX_RPS = 1000.0
NAME = "traffic"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes = b""


def next_call(rng: random.Random) -> Call:
    """One request of the mix: mostly reads, some writes (the failing POST /books among them)."""
    pick = rng.random()
    if pick < 0.20:
        return Call("GET", "/")
    if pick < 0.60:
        return Call("GET", f"/books/{rng.choice(BOOKS).id}")
    if pick < 0.75:
        return Call("GET", f"/authors/{rng.choice(AUTHORS).id}")
    if pick < 0.90:
        title = f"Notes on {rng.choice(BOOKS).title}"
        body = f"title={title.replace(' ', '+')}&author_id={rng.choice(AUTHORS).id}&pages={rng.randint(50, 900)}"
        return Call("POST", "/books", body.encode())
    return Call("POST", f"/books/{rng.choice(BOOKS).id}/rate", f"stars={rng.randint(1, 5)}".encode())


@dataclass
class Tally:
    """Outcomes since the last report (guarded by the lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    client_errors: int = 0
    server_errors: int = 0
    failed: int = 0  # no HTTP answer at all
    skipped: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, status: int | None, latency_ms: float) -> None:
        with self.lock:
            if status is None:
                self.failed += 1
            elif status >= 500:
                self.server_errors += 1
            elif status >= 400:
                self.client_errors += 1
            else:
                self.ok += 1
            if len(self.latencies_ms) < 100_000:
                self.latencies_ms.append(latency_ms)

    def report(self, seconds: float) -> str:
        with self.lock:
            lat = sorted(self.latencies_ms)
            sent = self.ok + self.client_errors + self.server_errors + self.failed
            line = (
                f"last {seconds:.0f}s: sent {sent} ({sent / max(seconds, 1e-9):.1f} rps), ok {self.ok}, "
                f"4xx {self.client_errors}, 5xx {self.server_errors}, no answer {self.failed}, "
                f"skipped {self.skipped}"
            )
            if lat:
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                line += f", p50 {lat[len(lat) // 2]:.0f}ms p99 {p99:.0f}ms"
            self.ok = self.client_errors = self.server_errors = self.failed = self.skipped = 0
            self.latencies_ms = []
        return line


class Worker(threading.Thread):
    def __init__(self, index: int, host: str, port: int, source: str | None, jobs: queue.Queue[Call | None],
                 tally: Tally, timeout_s: float) -> None:  # fmt: skip
        super().__init__(name=f"traffic-{index}", daemon=True)
        self._address = (host, port)
        self._source = (source, 0) if source else None
        self._jobs = jobs
        self._tally = tally
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        while (call := self._jobs.get()) is not None:
            started = time.perf_counter()
            status = self._send(call)
            self._tally.record(status, (time.perf_counter() - started) * 1000.0)
        if self._conn is not None:
            self._conn.close()

    def _send(self, call: Call) -> int | None:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(
                *self._address, timeout=self._timeout_s, source_address=self._source
            )
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if call.body else {}
        try:
            self._conn.request(call.method, call.path, body=call.body or None, headers=headers)
            response = self._conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = None
            return None
        if response.will_close:
            self._conn.close()
            self._conn = None
        return response.status


def run(target: str, rps: float, *, source: str | None, workers: int, report_every_s: float,
        duration_s: float | None, timeout_s: float, seed: int | None) -> int:  # fmt: skip
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        log(NAME, f"--target must be an http:// URL, got {target!r}")
        return 2
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    jobs: queue.Queue[Call | None] = queue.Queue(maxsize=workers)
    tally = Tally()
    pool = [Worker(i, parts.hostname, parts.port or 80, source, jobs, tally, timeout_s) for i in range(workers)]
    for worker in pool:
        worker.start()
    rng = random.Random(seed)
    log(NAME, f"sending {rps:g} rps to {target}")
    start = last_report = time.monotonic()
    sent = 0
    while not stopping.is_set():
        now = time.monotonic()
        if duration_s is not None and now - start >= duration_s:
            break
        if now - last_report >= report_every_s:
            log(NAME, tally.report(now - last_report))
            last_report = now
        due = start + sent / rps
        if due > now:
            stopping.wait(min(due - now, 0.5))
            continue
        sent += 1
        try:
            jobs.put_nowait(next_call(rng))
        except queue.Full:
            with tally.lock:
                tally.skipped += 1
    for _ in pool:
        jobs.put(None)
    for worker in pool:
        worker.join(timeout_s + 1.0)
    log(NAME, tally.report(time.monotonic() - last_report))
    log(NAME, "stopped")
    return 0


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, help="base URL of the ingress, e.g. http://127.77.0.4:8080")
    parser.add_argument("--rps", type=float, default=10.0, help=f"requests per second (max {MAX_RPS:g})")
    parser.add_argument("--source", help="local IP to send from (the generator's own 'pod' address)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent requests at most")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between summary lines")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until SIGTERM)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one answer")
    parser.add_argument("--seed", type=int, help="seed of the request mix, for repeatable runs")


def main(args: argparse.Namespace) -> int:
    if not 0 < args.rps <= MAX_RPS:
        raise SystemExit(f"--rps must be in (0, {MAX_RPS:g}], got {args.rps}")
    if not 1 <= args.workers <= 256:
        raise SystemExit(f"--workers must be 1 to 256, got {args.workers}")
    return run(
        args.target,
        args.rps,
        source=args.source,
        workers=args.workers,
        report_every_s=max(args.report_every, 1.0),
        duration_s=args.duration,
        timeout_s=args.timeout,
        seed=args.seed,
    )
