from __future__ import annotations

import os
import time

from meshctl.metrics.process import read_process_stats


def test_process_stats_are_plausible() -> None:
    stats = read_process_stats()
    assert 0 < stats.start_time_seconds <= time.time()
    assert stats.cpu_seconds >= 0
    if os.path.exists("/proc/self/stat"):
        assert stats.resident_memory_bytes is not None
        assert stats.resident_memory_bytes > 1024 * 1024


def test_cpu_time_is_monotonic() -> None:
    first = read_process_stats().cpu_seconds
    sum(i * i for i in range(200_000))  # burn a little CPU
    assert read_process_stats().cpu_seconds >= first
