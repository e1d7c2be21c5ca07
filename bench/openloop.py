"""Open-loop HTTP/1.1 load driver: fixed-rate sends over keep-alive connections, latency from intended time.

    python -m bench.openloop --url http://127.0.0.1:8080/ --rate 1000 --duration 10 --warmup 2 \
        --connections 16 [--host-header nginx.bench.svc.cluster.local:80] [--json]

A ticker thread sleeps until each request is due (nanosecond sleeps, unlike the event loop's millisecond
timers) and hands due requests to the event loop, which writes them on their round-robin connection or
queues them behind the request in flight there. How late the hand-off was is reported as the driver lag:
when it is high the driver, not the target, was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import sys
import threading
import time
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from bench.schedule import NS_PER_MS, ConnectionQueue, Recorder, Schedule
from meshctl.aio import spawn

_PR_SET_TIMERSLACK = 29


class _Slot:
    """One of the driver's connection slots: a queue that outlives reconnects of its TCP connection."""

    def __init__(self, driver: Driver, index: int) -> None:
        self.driver = driver
        self.index = index
        self.queue = ConnectionQueue()
        self.transport: asyncio.Transport | None = None
        self.connecting = False

    def submit(self, i: int) -> None:
        now = time.perf_counter_ns()
        send = self.queue.submit(i)
        self.driver.recorder.dispatched(i, now, waited=not send)
        if send:
            self._write()
        elif self.transport is None and not self.connecting:
            self.driver.reconnect(self)

    def _write(self) -> None:
        assert self.transport is not None
        self.transport.write(self.driver.request_bytes)

    def connected(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.connecting = False
        if self.queue.on_connected() is not None:
            self._write()

    def response(self, status: int, proxy_error: str | None, keep_alive: bool) -> None:
        done, nxt = self.queue.on_response(keep_alive)
        self.driver.completed(done, status, proxy_error)
        if not keep_alive:
            # The server will close; what waits here goes on the next connection.
            if self.transport is not None:
                self.transport.close()
            self.transport = None
            if self.queue.waiting and not self.driver.stopping:
                self.driver.reconnect(self)
        elif nxt is not None:
            self._write()

    def lost(self, transport: asyncio.BaseTransport, reason: str) -> None:
        if transport is not self.transport:
            return  # an old connection closing after we moved on
        self.transport = None
        lost = self.queue.on_disconnected()
        if lost is not None:
            self.driver.failed(lost, reason)
        if self.queue.waiting and not self.driver.stopping:
            self.driver.reconnect(self)

    def connect_failed(self, reason: str) -> None:
        self.connecting = False
        for i in self.queue.drain():
            self.driver.failed(i, reason)


class _Client(asyncio.Protocol):
    """Parses responses on one TCP connection (httptools callbacks, no per-request allocation beyond them)."""

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.proxy_error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.slot.connected(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.transport is not None:
                self.slot.lost(self.transport, f"bad response ({exc.__class__.__name__})")
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.slot.lost(self.transport, "connection closed" if exc is None else f"connection {exc!r}")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.proxy_error = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"mesh-proxy-error":
            self.proxy_error = value.decode("latin-1")

    def on_message_complete(self) -> None:
        self.slot.response(self.parser.get_status_code(), self.proxy_error, self.parser.should_keep_alive())


class Driver:
    """One run against one target; `run()` returns the Recorder's summary."""

    def __init__(self, host: str, port: int, path: str, host_header: str, schedule: Schedule, timeout_s: float) -> None:
        self.host, self.port = host, port
        self.schedule = schedule
        self.timeout_s = timeout_s
        self.request_bytes = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: meshctl-bench-openloop\r\n\r\n"
        ).encode("latin-1")
        self.recorder = Recorder(schedule, 0)
        self.slots = [_Slot(self, n) for n in range(schedule.connections)]
        self.stopping = False
        self._all_done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self._all_done = asyncio.Event()
        for slot in self.slots:
            slot.connecting = True
            await loop.create_connection(partial(_Client, slot), self.host, self.port)
        start_ns = time.perf_counter_ns() + 20 * NS_PER_MS  # let the ticker thread get going first
        self.recorder = Recorder(self.schedule, start_ns)
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(loop, start_ns, stop), name="ticker", daemon=True)
        ticker.start()
        last_due_s = self.schedule.offset_ns(self.schedule.total - 1) / 1e9
        deadline_s = max(0.0, (start_ns - time.perf_counter_ns()) / 1e9) + last_due_s + self.timeout_s
        try:
            await asyncio.wait_for(self._all_done.wait(), deadline_s)
        except TimeoutError:
            pass
        finally:
            stop.set()
            ticker.join(timeout=5)
            self._finish()
        return self.recorder.summary()

    def _tick(self, loop: asyncio.AbstractEventLoop, start_ns: int, stop: threading.Event) -> None:
        # Linux pads every sleep with 50 µs of timer slack by default; 1 µs keeps sends on schedule.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
        sched = self.schedule
        i = 0
        while i < sched.total and not stop.is_set():
            wait_ns = start_ns + sched.offset_ns(i) - time.perf_counter_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            j = sched.due_until(i, time.perf_counter_ns() - start_ns)
            try:
                loop.call_soon_threadsafe(self._fire, i, j)
            except RuntimeError:
                return  # the loop closed under us: the run was cancelled
            i = j

    def _fire(self, first: int, end: int) -> None:
        if self.stopping:
            return
        slots, conns = self.slots, self.schedule.connections
        for i in range(first, end):
            slots[i % conns].submit(i)

    def completed(self, i: int, status: int, proxy_error: str | None) -> None:
        self.recorder.completed(i, time.perf_counter_ns(), status, proxy_error)
        self._check_done()

    def failed(self, i: int, reason: str) -> None:
        self.recorder.failed(i, reason)
        self._check_done()

    def _check_done(self) -> None:
        if self.recorder.all_finished and self._all_done is not None:
            self._all_done.set()

    def reconnect(self, slot: _Slot) -> None:
        slot.connecting = True
        task = spawn(self._connect(slot), name=f"openloop-connect-{slot.index}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(partial(_Client, slot), self.host, self.port), 5.0)
        except (OSError, TimeoutError) as exc:
            slot.connect_failed(f"connect: {exc.__class__.__name__}")

    def _finish(self) -> None:
        """Whatever has not finished by the deadline timed out; close every connection."""
        self.stopping = True
        for slot in self.slots:
            for i in slot.queue.drain():
                self.recorder.failed(i, "timeout")
            if slot.transport is not None:
                slot.transport.close()
                slot.transport = None
        for task in self._tasks:
            task.cancel()
        # Requests the ticker never handed over (the deadline passed first) also count as timed out.
        handed = {i for i in range(self.schedule.total) if self.recorder.lag_ns[i] >= 0}
        for i in range(self.schedule.total):
            if i not in handed:
                self.recorder.failed(i, "never sent")


def run_load(
    url: str,
    *,
    rate: float,
    duration_s: float,
    warmup_s: float = 2.0,
    connections: int = 16,
    host_header: str | None = None,
    max_requests: int = 1_000_000,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Run one open-loop load against `url` and return its summary (see Recorder.summary)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r}: only http://host:port/path URLs are supported")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    header = host_header or parts.netloc
    schedule = Schedule.plan(rate, warmup_s, duration_s, connections, max_requests)
    driver = Driver(parts.hostname, port, path, header, schedule, timeout_s)
    # Bound how long a thread waiting for the GIL (the ticker) can be held off by the loop thread.
    sys.setswitchinterval(0.0001)
    result = _run(driver.run())
    result.update({"url": url, "host_header": header, "duration_s": duration_s, "warmup_s": warmup_s})
    return result


def _run(coro: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def format_summary(result: dict[str, Any]) -> str:
    lat, lag = result["latency_ms"], result["driver_lag_ms"]
    lines = [
        f"target      {result['url']}  Host: {result['host_header']}",
        f"offered     {result['offered_rps']:g} rps over {result['connections']} connections, "
        f"{result['duration_s']:g} s after {result['warmup_s']:g} s warm-up",
        f"achieved    {result['achieved_rps']:.1f} rps, {result['ok']} ok, {result['error_count']} errors "
        + (json.dumps(result["errors"]) if result["errors"] else ""),
        "latency ms  " + "  ".join(f"{k} {lat[k]:.3f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
        f"driver lag  p50 {lag['p50']:.3f}  p99 {lag['p99']:.3f}  max {lag['max']:.3f} ms; "
        f"{result['queued_on_busy_connection']} requests waited for a busy connection",
        "verdict     "
        + ("valid" if result["valid"] else "; ".join(result["problems"]))
        + "".join(f"; {w}" for w in result["warnings"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port/path to send GETs to")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the same rate, discarded")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (round-robin)")
    parser.add_argument("--host-header", help="Host header to send (e.g. a mesh service authority)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="bound on warm-up + measured")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait after the last send")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)
    try:
        result = run_load(
            args.url,
            rate=args.rate,
            duration_s=args.duration,
            warmup_s=args.warmup,
            connections=args.connections,
            host_header=args.host_header,
            max_requests=args.max_requests,
            timeout_s=args.timeout,
        )
    except (ValueError, OSError) as exc:
        print(f"openloop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result, indent=1) if args.json else format_summary(result))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
