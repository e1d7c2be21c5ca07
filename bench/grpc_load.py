"""Closed-loop gRPC load: a grpc.aio client keeping N unary calls in flight, calls/s and latency as JSON.

    python -m bench.grpc_load --target 127.0.0.1:7003 [--authority ratings.bench.svc.cluster.local:7003] \
        [--in-flight 64] [--warmup 1] [--duration 5] [--watch proxy-a=PID ...]

N workers share one channel (one HTTP/2 connection, as a real client has); each issues its next
`Ratings/GetRating` as soon as its previous call returned, so exactly N calls are outstanding from the
first to the last. Calls are counted by completion time: those that completed during the measured
window (after the warm-up) make calls/s, their latency the percentiles (successful calls only) and
their status codes the error counts. The CPU of the --watch processes (the proxies on the way) and of
this client is sampled at the window's edges. Bounded by --duration, --max-calls and a per-call
deadline; like wrk and h2load it measures peak throughput, not latency under a fixed load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.procs import cpu_seconds
from bench.stats import summarize
from meshctl.aio import spawn
from meshctl.demo.proto import ratings_pb2, ratings_pb2_grpc

OK = "OK"
WRONG_REPLY = "WRONG_REPLY"  # a reply that is not the rating asked for: counted as an error


class LoadError(RuntimeError):
    """The load could not be offered (target unreachable, run over its time bound)."""


@dataclass(frozen=True)
class LoadSpec:
    target: str  # host:port the channel dials
    authority: str = ""  # :authority of every call ("" = the target's)
    in_flight: int = 64
    warmup_s: float = 1.0
    duration_s: float = 5.0
    timeout_s: float = 10.0  # deadline of each call, and of connecting
    max_calls: int = 2_000_000  # issued over warm-up and window together
    book_id: int = 1
    watch: dict[str, int] = field(default_factory=dict)  # name -> pid whose CPU is sampled over the window


class _Load:
    def __init__(self, spec: LoadSpec, call: Any) -> None:
        self.spec = spec
        self.call = call
        self.request = ratings_pb2.GetRatingRequest(book_id=spec.book_id)
        start = time.perf_counter()
        self.window_start = start + spec.warmup_s
        self.end = self.window_start + spec.duration_s
        self.issued = 0
        self.outstanding = 0
        self.max_outstanding = 0
        self.statuses: Counter[str] = Counter()  # completed within the window
        self.warmup_statuses: Counter[str] = Counter()
        self.after_window = 0  # completed after the window closed (the drain)
        self.latencies_ms: list[float] = []
        self.cpu: dict[str, float] = {}
        self.client_cpu = 0.0
        self.window_s = 0.0

    async def worker(self) -> None:
        while True:
            sent = time.perf_counter()
            if sent >= self.end or self.issued >= self.spec.max_calls:
                return
            self.issued += 1
            self.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
            try:
                reply = await self.call(self.request, timeout=self.spec.timeout_s)
                status = OK if reply.book_id == self.spec.book_id else WRONG_REPLY
            except grpc.aio.AioRpcError as exc:
                status = exc.code().name
            finally:
                self.outstanding -= 1
            done = time.perf_counter()
            if done < self.window_start:
                self.warmup_statuses[status] += 1
            elif done <= self.end:
                self.statuses[status] += 1
                if status == OK:
                    self.latencies_ms.append((done - sent) * 1e3)
            else:
                self.after_window += 1

    async def sample_window(self) -> None:
        """CPU of the watched processes and of this client between the window's edges."""
        await asyncio.sleep(max(0.0, self.window_start - time.perf_counter()))
        t0, own0 = time.perf_counter(), time.process_time()
        before = {name: cpu_seconds(pid) for name, pid in self.spec.watch.items()}
        await asyncio.sleep(max(0.0, self.end - time.perf_counter()))
        t1, own1 = time.perf_counter(), time.process_time()
        self.window_s = t1 - t0
        if self.window_s > 0:
            after = {name: cpu_seconds(pid) for name, pid in self.spec.watch.items()}
            self.cpu = {name: (after[name] - before[name]) / self.window_s for name in after}
            self.client_cpu = (own1 - own0) / self.window_s

    def result(self) -> dict[str, Any]:
        ok = self.statuses[OK]
        errors = {code: n for code, n in sorted(self.statuses.items()) if code != OK}
        return {
            "target": self.spec.target,
            "authority": self.spec.authority,
            "in_flight": self.spec.in_flight,
            "max_in_flight": self.max_outstanding,
            "warmup_s": self.spec.warmup_s,
            "duration_s": self.spec.duration_s,
            "issued": self.issued,
            "calls": ok,
            "calls_per_s": ok / self.spec.duration_s,
            "errors": sum(errors.values()),
            "errors_by_status": errors,
            "warmup_calls": self.warmup_statuses[OK],
            "warmup_errors_by_status": {c: n for c, n in sorted(self.warmup_statuses.items()) if c != OK},
            "after_window": self.after_window,
            "max_calls_reached": self.issued >= self.spec.max_calls,
            "latency_ms": summarize(self.latencies_ms),
            "window_s": self.window_s,
            "cpu": self.cpu,
            "client_cpu": self.client_cpu,
        }


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Offer the load of `spec` and return its figures (LoadError if the target cannot be reached)."""
    if spec.in_flight < 1 or spec.duration_s <= 0 or spec.warmup_s < 0 or spec.max_calls < 1:
        raise LoadError("in-flight and max-calls must be at least 1, duration positive, warm-up not negative")
    options: list[tuple[str, Any]] = [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0)]
    if spec.authority:
        options.append(("grpc.default_authority", spec.authority))
    async with grpc.aio.insecure_channel(spec.target, options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), spec.timeout_s)
        except TimeoutError:
            raise LoadError(f"cannot connect to {spec.target} within {spec.timeout_s:g} s") from None
        load = _Load(spec, ratings_pb2_grpc.RatingsStub(channel).GetRating)
        bound = spec.warmup_s + spec.duration_s + spec.timeout_s + 10.0
        sampler = spawn(load.sample_window(), name="grpc-load-cpu-sampler")
        try:
            await asyncio.wait_for(asyncio.gather(*(load.worker() for _ in range(spec.in_flight))), bound)
            if load.issued >= spec.max_calls:
                sampler.cancel()  # the window was cut short: it has no CPU figures
            await asyncio.wait([sampler], timeout=max(0.0, load.end - time.perf_counter()) + 1.0)
        except TimeoutError:
            raise LoadError(f"the run did not finish within {bound:g} s") from None
        finally:
            sampler.cancel()
    return load.result()


def _watch(text: str) -> tuple[str, int]:
    name, sep, pid = text.partition("=")
    if not sep or not name or not pid.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PID, got {text!r}")
    return name, int(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port to dial")
    parser.add_argument("--authority", default="", help=":authority of the calls (default: the target)")
    parser.add_argument("--in-flight", type=int, default=64, help="calls kept outstanding (default 64)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the window (default 1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured (default 5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call in seconds")
    parser.add_argument("--max-calls", type=int, default=LoadSpec.max_calls, help="calls issued at most")
    parser.add_argument("--book-id", type=int, default=1, help="the book whose rating every call asks for")
    parser.add_argument("--watch", type=_watch, action="append", default=[], metavar="NAME=PID",
                        help="a process whose CPU use over the window is reported (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    spec = LoadSpec(
        target=args.target, authority=args.authority, in_flight=args.in_flight, warmup_s=args.warmup,
        duration_s=args.duration, timeout_s=args.timeout, max_calls=args.max_calls, book_id=args.book_id,
        watch=dict(args.watch),
    )  # fmt: skip
    try:
        result = asyncio.run(run_load(spec))
    except LoadError as exc:
        print(f"grpc_load: {exc} (is the server, or the sidecar in front of it, running?)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
