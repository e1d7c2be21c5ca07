from __future__ import annotations

from hyperframe.frame import GoAwayFrame, RstStreamFrame

from bench.ngh2_probe import (
    continuation_flood,
    exchange_core,
    exchange_h2,
    exchange_ngh2,
    queued_frames,
    rapid_reset,
    settings_flood,
)


def test_queued_frames_are_counted_by_type_and_a_goaway_shows_its_error_code() -> None:
    out = b"".join(
        f.serialize()
        for f in (RstStreamFrame(1, error_code=3), RstStreamFrame(3, error_code=3), GoAwayFrame(0, error_code=11))
    )
    assert queued_frames(out) == "RST_STREAM ×2, GOAWAY(11)"
    assert queued_frames(b"") == "nothing"


def test_the_attacks_are_the_frames_they_claim() -> None:
    reset = rapid_reset()
    assert (reset[3], reset[4]) == (0x1, 0x5)  # HEADERS with END_STREAM and END_HEADERS
    assert queued_frames(reset) == "HEADERS ×10000, RST_STREAM ×10000"
    assert queued_frames(settings_flood()) == "SETTINGS ×10000"
    assert queued_frames(continuation_flood()).startswith("HEADERS, type 9 ×10000")


def test_the_core_exchange_counts_calls() -> None:
    us, py_calls, c_calls = exchange_core(20)
    assert us > 0 and py_calls > 10 and c_calls > 0, (us, py_calls, c_calls)


def test_the_codecs_exchange_in_memory() -> None:
    assert exchange_h2(20) > 0 and exchange_ngh2(20) > 0
