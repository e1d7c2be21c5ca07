"""--window and --interval parsing, and the two-scrapes rule."""

from __future__ import annotations

import pytest

from meshctl.errors import ExitCode, UsageError
from meshctl.observe.window import check_window, format_duration, parse_duration, parse_interval, parse_window


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("45", 45), (" 1M ", 60)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "--window") == seconds


@pytest.mark.parametrize("text", ["", "1.5m", "m", "1x", "1m 30s", "-1m", "30s1m1"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration(text, "--window")
    assert caught.value.exit_code is ExitCode.USAGE and "--window" in caught.value.message


def test_window_range() -> None:
    assert parse_window("1m") == 60
    for text in ("0s", "25h"):
        with pytest.raises(UsageError):
            parse_window(text)


def test_interval_range() -> None:
    assert parse_interval("2s") == 2.0
    for text in ("0s", "2m"):
        with pytest.raises(UsageError):
            parse_interval(text)


def test_window_shorter_than_two_scrapes_is_refused() -> None:
    check_window(10, 5.0)
    check_window(60, None)  # unknown interval: nothing to check against
    with pytest.raises(UsageError) as caught:
        check_window(9, 5.0)
    assert "two scrape intervals" in caught.value.message and "5s each" in caught.value.message
    assert caught.value.hint == "use --window 10s or longer"
    with pytest.raises(UsageError) as caught:
        check_window(50, 30.0)
    assert caught.value.hint == "use --window 1m or longer"


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 5, 60, 90, 3600, 3661, 0.5, 2.5)] == [
        "0s", "5s", "1m", "1m30s", "1h", "1h1m1s", "500ms", "2.5s",
    ]  # fmt: skip
