from __future__ import annotations

import pytest

from bench.procs import BenchError
from bench.wrk import parse_wrk

CLEAN = """Running 10s test @ http://127.0.0.1:18080/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   257.91us   40.10us 602.00us   78.41%
    Req/Sec    91.16k     1.28k   92.63k    66.67%
  907107 requests in 10.00s, 304.65MB read
Requests/sec:  90682.87
Transfer/sec:    101.53MB
"""

WITH_ERRORS = """Running 10s test @ http://127.0.0.1:4140/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.00us  12.10ms   91.00%
    Req/Sec    21.01k   500.00    22.00k    70.00%
  210000 requests in 1.00m, 230.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   3500.00
Transfer/sec:      3.83MB
"""


def test_reads_rate_count_duration_and_latency() -> None:
    res = parse_wrk(CLEAN)
    assert res.rps == 90682.87 and res.requests == 907107 and res.seconds == 10.0
    assert res.avg_latency_ms == pytest.approx(0.25791)
    assert res.errors == 0


def test_counts_socket_errors_and_bad_statuses_as_errors() -> None:
    res = parse_wrk(WITH_ERRORS)
    assert res.errors == 3 + 2 + 7
    assert res.seconds == 60.0 and res.avg_latency_ms == pytest.approx(1.52)
    assert res.as_dict()["rps"] == 3500.0


def test_output_without_a_result_is_an_error() -> None:
    with pytest.raises(BenchError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
