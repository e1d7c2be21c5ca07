from __future__ import annotations

import pytest

from bench.h2load import parse_h2load
from bench.procs import BenchError

CLEAN = """starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 3.00s, 97575.33 req/s, 6.61MB/s
requests: 292726 total, 292806 started, 292726 done, 292726 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 292727 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 19.83MB (20795398) total, 1.95MB (2048044) headers (space savings 91.49%), 13.96MB (14636300) data
"""

# nginx closing connections after 1,000 streams: most requests fail, and h2load's own req/s hides it.
FAILING = """finished in 21.07ms, 94908.18 req/s, 6.43MB/s
requests: 20000 total, 2006 started, 2005 done, 2000 succeeded, 18000 failed, 18000 errored, 0 timeout
status codes: 2000 2xx, 0 3xx, 0 4xx, 3 5xx
"""


def test_reads_succeeded_requests_and_duration() -> None:
    result = parse_h2load(CLEAN)
    assert result.requests == 292726 and result.seconds == pytest.approx(3.0)
    assert result.rps == pytest.approx(292726 / 3.0) and result.errors == 0


def test_counts_failures_and_bad_statuses_and_rates_only_successes() -> None:
    result = parse_h2load(FAILING)
    assert result.seconds == pytest.approx(0.02107)
    assert result.errors == 18000 + 18000 + 3
    assert result.rps == pytest.approx(2000 / 0.02107)


def test_output_without_a_result_is_an_error() -> None:
    with pytest.raises(BenchError, match="no result"):
        parse_h2load("connect to 127.0.0.1:1 failed: Connection refused\n")
