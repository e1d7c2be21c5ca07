"""Under a steady few thousand events a second, the headless TUI keeps flat memory and redraws the
list at most once a frame (not once an event)."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc

from meshctl.tapping.store import TapStore
from meshctl.tui.app import FRAME_HZ, TapApp
from tests.unit.tapping.scenario import T0
from tests.unit.tui.feed import request_events

RATE = 3_000  # events/s: 1,000 requests/s of three events each
WARM_S, MEASURE_S = 3.0, 4.0
MIN_REQUESTS = 2_000  # in the measured window, or the test proves nothing


def per_request_bytes() -> float:
    """What keeping one more request costs: the growth a leak would show, per request."""
    store = TapStore(capacity=100_000)
    before = tracemalloc.take_snapshot()
    for n in range(2_000):
        for event in request_events("p", n, n, T0 + n * 1_000):
            store.add(event)
    after = tracemalloc.take_snapshot()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / 2_000


def test_memory_is_flat_and_redraws_follow_frames_not_events() -> None:
    store = TapStore(capacity=1_500)  # full within the warm-up, as a long tap would be
    stop, go = threading.Event(), threading.Event()
    sent = [0]

    def feed() -> None:
        go.wait(60)  # from when the app is up: starting it under tracemalloc takes a while
        n, started = 0, time.monotonic()
        while not stop.is_set() and time.monotonic() - started < WARM_S + MEASURE_S + 20:
            due = int((time.monotonic() - started) * RATE / 3)  # requests due by now
            while n < due:
                for event in request_events(f"webapp-{n % 3}", n, n, T0 + n * 1_000):
                    store.add(event)
                n += 1
            sent[0] = n
            time.sleep(0.01)

    async def scenario() -> tuple[int, int, int, float]:
        app = TapApp(store, start_stream=feed, stop_stream=stop.set)
        syncs = [0]
        original = app.requests.sync

        def counted() -> None:
            syncs[0] += 1
            original()

        app.requests.sync = counted  # type: ignore[method-assign]
        async with app.run_test(size=(120, 32)) as pilot:
            go.set()
            await pilot.pause(WARM_S)
            before = tracemalloc.take_snapshot()
            requests_before, syncs_before, started = sent[0], syncs[0], time.monotonic()
            await pilot.pause(MEASURE_S)
            after = tracemalloc.take_snapshot()
            elapsed = time.monotonic() - started
            requests, frames = sent[0] - requests_before, syncs[0] - syncs_before
            growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
            assert len(app.view.rows) <= store.capacity
            await pilot.press("q")
        return growth, requests, frames, elapsed

    tracemalloc.start()
    try:
        leak = per_request_bytes()
        growth, requests, frames, elapsed = asyncio.run(scenario())
    finally:
        tracemalloc.stop()
        stop.set()
    assert requests >= MIN_REQUESTS, f"only {requests} requests in {elapsed:.1f}s: the feed did not keep up"
    # Caches fill a little (bounded); keeping every request would grow by requests × leak.
    assert growth < 0.4 * requests * leak, (
        f"memory grew by {growth / 1e6:.2f} MB while {requests} requests arrived "
        f"(keeping them all would be {requests * leak / 1e6:.2f} MB)"
    )
    assert 1 <= frames <= elapsed * FRAME_HZ * 1.5 + 2, f"{frames} list redraws for {requests} requests"
