"""The time window of a query (`--window 1m`) and the watch interval (`--interval 2s`).

A window must hold at least two scrapes: with one, a counter's change over the window is the change
between two samples that may both fall outside the traffic, and short windows read as no traffic at all.
"""

from __future__ import annotations

import re

from meshctl.errors import UsageError

MIN_SCRAPES = 2
MAX_WINDOW_S = 24 * 3600.0  # the local Prometheus keeps 24 h
MIN_INTERVAL_S = 1.0  # --watch refreshes at most once a second ...
MAX_INTERVAL_S = 60.0  # ... and at least once a minute

_PART = re.compile(r"(\d+)(h|m|s)")
_UNIT_S = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, flag: str) -> int:
    """Whole seconds of "30s", "1m", "1m30s", "2h" or a bare number of seconds."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UsageError(f"{flag}: {text!r} is not a duration", hint="use whole seconds, e.g. 30s, 1m or 1m30s")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def parse_window(text: str) -> int:
    seconds = parse_duration(text, "--window")
    if not 0 < seconds <= MAX_WINDOW_S:
        raise UsageError(f"--window: {text!r} is out of range", hint="use a window between 1s and 24h")
    return seconds


def parse_interval(text: str) -> float:
    seconds = parse_duration(text, "--interval")
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise UsageError(f"--interval: {text!r} is out of range", hint="refresh between every 1s and every 1m")
    return float(seconds)


def check_window(window_s: int, scrape_interval_s: float | None) -> None:
    """Refuse a window shorter than two scrape intervals (it would show no traffic, or half of it)."""
    if scrape_interval_s is None:
        return
    minimum = MIN_SCRAPES * scrape_interval_s
    if window_s < minimum:
        raise UsageError(
            f"--window {format_duration(window_s)} is shorter than two scrape intervals of Prometheus "
            f"({format_duration(scrape_interval_s)} each), so it cannot measure a rate",
            hint=f"use --window {format_duration(minimum)} or longer",
        )


def format_duration(seconds: float) -> str:
    """1m, 30s, 1m30s, 2h; fractions of a second as ms."""
    if seconds != int(seconds):
        return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"
    whole = int(seconds)
    out = ""
    for unit, size in _UNIT_S.items():
        count, whole = divmod(whole, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"
