"""Peak HTTP/2 throughput with h2load (closed loop, prior knowledge h2c) and its output parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.procs import BenchError, Processes, run_bounded


@dataclass(frozen=True)
class H2loadResult:
    requests: int  # succeeded
    seconds: float
    rps: float  # succeeded requests per second
    errors: int  # failed + errored + timed-out requests, and non-2xx responses

    def as_dict(self) -> dict[str, float | int]:
        return {"requests": self.requests, "seconds": self.seconds, "rps": self.rps, "errors": self.errors}


def parse_h2load(text: str) -> H2loadResult:
    """Read the figures out of h2load's report; BenchError if it is not one.

    The rate is recomputed from succeeded requests: h2load's own req/s counts failed ones too.
    """
    finished = re.search(r"^finished in ([\d.]+)(us|ms|s)", text, re.M)
    counts = re.search(
        r"^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout",
        text,
        re.M,
    )
    statuses = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if not (finished and counts and statuses):
        raise BenchError(f"h2load printed no result:\n{text.strip()[-500:]}")
    seconds = float(finished.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[finished.group(2)]
    succeeded = int(counts.group(2))
    errors = sum(int(n) for n in counts.groups()[2:]) + sum(int(n) for n in statuses.groups()[1:])
    return H2loadResult(succeeded, seconds, succeeded / seconds if seconds > 0 else 0.0, errors)


def run_h2load(
    procs: Processes,
    name: str,
    url: str,
    *,
    authority: str,
    seconds: int,
    clients: int,
    streams: int,
    cpu: int | None,
) -> H2loadResult:
    argv = ["h2load", f"-c{clients}", f"-m{streams}", "-D", str(seconds), "-H", f":authority: {authority}", url]
    return parse_h2load(run_bounded(procs, name, argv, cpu=cpu, timeout_s=seconds + 30))
