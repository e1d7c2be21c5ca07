"""Process metrics (start time, CPU, resident memory), read from /proc/self at render time."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_IMPORT_TIME = time.time()


@dataclass(frozen=True)
class ProcessStats:
    start_time_seconds: float
    cpu_seconds: float
    resident_memory_bytes: int | None  # None where /proc is not available


def _stat_fields() -> list[str] | None:
    """Fields 3.. of /proc/self/stat; the command name may hold spaces, so split after its ')'."""
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _start_time() -> float:
    fields = _stat_fields()
    boot = _boot_time()
    if fields is None or boot is None:
        return _IMPORT_TIME
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


_START_TIME = _start_time()


def read_process_stats() -> ProcessStats:
    fields = _stat_fields()
    if fields is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return ProcessStats(_START_TIME, usage.ru_utime + usage.ru_stime, None)
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = int(fields[21]) * resource.getpagesize()
    return ProcessStats(_START_TIME, cpu, rss)
