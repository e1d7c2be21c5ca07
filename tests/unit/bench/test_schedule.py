from __future__ import annotations

import pytest

from bench.schedule import NS_PER_MS, ConnectionQueue, Recorder, Schedule


def test_plan_splits_warmup_and_measurement_and_bounds_the_total() -> None:
    sched = Schedule.plan(1000, warmup_s=2, duration_s=10, connections=16, max_requests=1_000_000)
    assert (sched.warmup, sched.measured, sched.total) == (2000, 10_000, 12_000)
    capped = Schedule.plan(1000, warmup_s=2, duration_s=10, connections=16, max_requests=5000)
    assert (capped.warmup, capped.measured) == (2000, 3000)
    with pytest.raises(ValueError):
        Schedule.plan(1000, warmup_s=2, duration_s=10, connections=16, max_requests=2000)
    for rate, duration, connections in ((0.0, 1.0, 1), (10.0, 1.0, 0), (10.0, 0.0, 1)):
        with pytest.raises(ValueError):
            Schedule.plan(rate, warmup_s=0, duration_s=duration, connections=connections, max_requests=100)


def test_sends_are_on_a_fixed_clock_and_dealt_round_robin() -> None:
    sched = Schedule(rate=1000, warmup=0, measured=10, connections=4)
    assert [sched.offset_ns(i) for i in range(4)] == [0, 1_000_000, 2_000_000, 3_000_000]
    assert [sched.connection_of(i) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    odd = Schedule(rate=3, warmup=0, measured=5, connections=1)
    assert odd.offset_ns(1) == 333_333_333 and odd.offset_ns(2) == 666_666_667


@pytest.mark.parametrize("rate", [1000.0, 3.0, 7919.0, 333.3])
def test_due_until_is_exactly_the_requests_whose_time_has_come(rate: float) -> None:
    sched = Schedule(rate=rate, warmup=0, measured=200, connections=1)
    for i in range(1, 150):
        at = sched.offset_ns(i)
        assert sched.due_until(0, at) == i + 1
        assert sched.due_until(0, at - 1) == i
    assert sched.due_until(0, 10**15) == sched.total
    assert sched.due_until(50, 0) == 50  # never goes backwards


def test_a_busy_connection_queues_in_order_and_sends_on_each_response() -> None:
    q = ConnectionQueue()
    assert q.submit(0) is False  # not connected yet
    assert q.on_connected() == 0
    assert q.submit(4) is False and q.submit(8) is False
    assert q.on_response() == (0, 4)
    assert q.on_response() == (4, 8)
    assert q.on_response() == (8, None)
    assert q.submit(12) is True
    with pytest.raises(RuntimeError):
        ConnectionQueue().on_response()


def test_a_lost_connection_loses_only_the_request_in_flight() -> None:
    q = ConnectionQueue()
    q.on_connected()
    q.submit(1)
    q.submit(2)
    q.submit(3)
    assert q.on_disconnected() == 1
    assert q.submit(4) is False
    assert q.on_connected() == 2
    assert q.drain() == [2, 3, 4]
    assert q.in_flight is None and not q.waiting


def test_without_keep_alive_the_next_request_waits_for_a_new_connection() -> None:
    q = ConnectionQueue()
    q.on_connected()
    q.submit(1)
    q.submit(2)
    assert q.on_response(keep_alive=False) == (1, None)
    assert q.submit(3) is False
    assert q.on_connected() == 2


def _recorder(measured: int = 10, warmup: int = 0, rate: float = 1000) -> Recorder:
    return Recorder(Schedule(rate=rate, warmup=warmup, measured=measured, connections=1), start_ns=10**12)


def test_latency_counts_from_the_intended_time_even_when_the_send_waited() -> None:
    # Coordinated omission: a server that stalls 50 ms on request 0 delays request 1 (due 1 ms later) too.
    rec = _recorder(measured=2)
    t0 = rec.intended_ns(0)
    rec.dispatched(0, t0, waited=False)
    rec.dispatched(1, rec.intended_ns(1), waited=True)
    rec.completed(0, t0 + 50 * NS_PER_MS, 200)
    rec.completed(1, t0 + 50 * NS_PER_MS + 100_000, 200)
    out = rec.summary()
    latency = out["latency_ms"]
    assert isinstance(latency, dict)
    assert latency["max"] == pytest.approx(50.0)
    assert latency["p50"] == pytest.approx(49.1)  # 50.1 ms after it was due at 1 ms
    assert out["queued_on_busy_connection"] == 1


def test_summary_of_an_on_time_run_is_valid() -> None:
    rec = _recorder(measured=1000, warmup=100)
    for i in range(rec.schedule.total):
        due = rec.intended_ns(i)
        rec.dispatched(i, due + 20_000, waited=False)
        rec.completed(i, due + 300_000, 200)
    out = rec.summary()
    assert rec.all_finished
    assert out["valid"] is True and out["problems"] == [] and out["driver_limited"] is False
    assert out["ok"] == 1000 and out["requests"] == 1000 and out["warmup_requests"] == 100
    assert out["achieved_rps"] == pytest.approx(1000, rel=0.01)
    lag = out["driver_lag_ms"]
    assert isinstance(lag, dict) and lag["p99"] == pytest.approx(0.02)
    histogram = out["histogram_us"]
    assert isinstance(histogram, list) and sum(row[2] for row in histogram) == 1000


def test_errors_and_saturation_make_a_run_invalid_and_driver_lag_is_flagged() -> None:
    rec = _recorder(measured=100, warmup=10)
    for i in range(rec.schedule.total):
        due = rec.intended_ns(i)
        rec.dispatched(i, due + 2 * NS_PER_MS, waited=False)  # the driver was 2 ms late every time
        if i == 3:
            rec.failed(i, "connection closed")  # warm-up: not counted
        elif i == 50:
            rec.completed(i, due, 502, "unreachable")
        elif i == 60:
            rec.failed(i, "timeout")
        else:
            # Each response takes 1 ms longer than the last: the target falls behind.
            rec.completed(i, due + i * NS_PER_MS, 200)
    out = rec.summary()
    assert out["valid"] is False
    assert out["errors"] == {"http 502 (unreachable)": 1, "timeout": 1}
    problems = " ".join(str(p) for p in out["problems"])  # type: ignore[attr-defined]
    assert "2 errors" in problems and "saturated" in problems and "driver-limited" not in problems
    assert out["driver_limited"] is True and out["warnings"] == ["driver lag p99 2.000 ms (driver-limited)"]
    assert out["statuses"] == {"200": 107, "502": 1}


def test_a_late_driver_alone_leaves_the_run_valid_but_flagged() -> None:
    rec = _recorder(measured=1000, warmup=0)
    for i in range(rec.schedule.total):
        due = rec.intended_ns(i)
        late = 3 * NS_PER_MS if i % 50 == 0 else 10_000  # 2 % of sends were 3 ms late: p99 is late
        rec.dispatched(i, due + late, waited=False)
        rec.completed(i, due + late + 200_000, 200)
    out = rec.summary()
    assert out["valid"] is True and out["problems"] == [] and out["driver_limited"] is True
    latency = out["latency_ms"]
    assert isinstance(latency, dict) and latency["p99"] == pytest.approx(3.2)  # the lateness is charged
