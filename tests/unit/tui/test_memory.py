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
WARM_S, MEASURE_S = 3.0, 4.0  # seconds
WINDOW = int(RATE / 3 * MEASURE_S)  # requests in the measured window
MIN_REQUESTS = WINDOW // 2  # or the test proves nothing
MAX_REQUESTS = 200_000


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
    stop, running = threading.Event(), threading.Event()
    sent = [0]

    def feed() -> None:
        n, started = 0, time.monotonic()
        while not stop.is_set() and n < MAX_REQUESTS and time.monotonic() - started < 120:  # bounded either way
            if not running.wait(0.05):
                continue
            for _ in range(RATE // 3 // 100):  # every 10 ms: RATE events/s when the machine keeps up
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

        async def settled() -> tracemalloc.Snapshot:
            # Memory compared at rest: the feed held and every change drawn, so what is in flight
            # between two frames (bounded, but large under a slow frame) does not count as growth.
            running.clear()
            for _ in range(100):
                await pilot.pause(0.1)
                if app.view.waiting == 0 and not app.view.dirty:
                    break
            return tracemalloc.take_snapshot()

        async with app.run_test(size=(120, 32)) as pilot:
            running.set()
            await pilot.pause(WARM_S)
            before = await settled()
            requests_before, syncs_before, started = sent[0], syncs[0], time.monotonic()
            running.set()
            # MEASURE_S at RATE, or longer on a busy machine, until the window holds WINDOW requests
            deadline = started + MEASURE_S * 8
            while sent[0] - requests_before < WINDOW and time.monotonic() < deadline:
                await pilot.pause(0.25)
            requests, frames = sent[0] - requests_before, syncs[0] - syncs_before
            elapsed = time.monotonic() - started
            after = await settled()
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
    assert requests >= MIN_REQUESTS, f"only {requests} requests in {elapsed:.1f}s ({sent[0]} in all)"
    # Caches fill a little (bounded); keeping every request would grow by requests × leak.
    assert growth < 0.4 * requests * leak, (
        f"memory grew by {growth / 1e6:.2f} MB while {requests} requests arrived "
        f"(keeping them all would be {requests * leak / 1e6:.2f} MB)"
    )
    assert 1 <= frames <= elapsed * FRAME_HZ * 1.5 + 2, f"{frames} list redraws for {requests} requests"
