"""Peak throughput with wrk (closed loop: right for requests/s, wrong for latency) and its output parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.procs import BenchError, Processes, run_bounded

_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    avg_latency_ms: float
    errors: int  # socket errors of every kind plus non-2xx/3xx responses

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "avg_latency_ms": self.avg_latency_ms,
            "errors": self.errors,
        }


def parse_wrk(text: str) -> WrkResult:
    """Read the figures out of wrk's report; BenchError if it is not one."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    latency = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)", text, re.M)
    if not (rps and total):
        raise BenchError(f"wrk printed no result:\n{text.strip()[:500]}")
    errors = 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNIT_S[total.group(3)],
        rps=float(rps.group(1)),
        avg_latency_ms=float(latency.group(1)) * _UNIT_S[latency.group(2)] * 1e3 if latency else 0.0,
        errors=errors,
    )


def run_wrk(
    procs: Processes,
    name: str,
    url: str,
    *,
    host_header: str,
    seconds: int,
    connections: int,
    cpu: int | None,
) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Host: {host_header}", url]
    out = run_bounded(procs, name, argv, cpu=cpu, timeout_s=seconds + 30)
    return parse_wrk(out)
