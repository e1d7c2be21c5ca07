from __future__ import annotations

import random

import pytest

from bench.stats import LogHistogram, percentile, percentile_key, summarize


def test_nearest_rank_percentiles_of_one_to_a_thousand() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile(values, 0) == 1


def test_percentile_rank_is_not_pushed_up_by_float_error() -> None:
    # 99.9 / 100 * 10,000 is 9990.000000000002 in binary floating point.
    values = list(range(1, 10_001))
    assert percentile(values, 99.9) == 9990


def test_percentile_of_a_single_value_and_bad_input() -> None:
    assert percentile([7.0], 99.9) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_reports_keys_in_table_order() -> None:
    out = summarize([3.0, 1.0, 2.0, 4.0])
    assert list(out) == ["count", "mean", "p50", "p90", "p99", "p99.9", "max"]
    assert out["count"] == 4 and out["mean"] == 2.5 and out["p50"] == 2.0 and out["max"] == 4.0
    assert summarize([])["p99"] == 0.0
    assert percentile_key(99.9) == "p99.9" and percentile_key(50.0) == "p50"


def test_histogram_buckets_tile_the_integers_without_gaps() -> None:
    hist = LogHistogram(sub_bits=3)
    previous_high = -1
    for index in range(200):
        low, high = hist.bounds(index)
        assert low == previous_high + 1, index
        assert hist.index(low) == index and hist.index(high) == index
        previous_high = high


def test_histogram_bucket_width_is_under_its_relative_precision() -> None:
    hist = LogHistogram(sub_bits=7)
    for value in (0, 1, 255, 256, 257, 1000, 12_345, 10**6, 10**9):
        low, high = hist.bounds(hist.index(value))
        assert low <= value <= high
        assert high - low < max(1, value) / 128


def test_histogram_percentiles_stay_within_precision_of_exact_ones() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(5, 1.2)) for _ in range(20_000)]
    hist = LogHistogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for p in (50, 90, 99, 99.9, 100):
        exact = percentile(ordered, p)
        approx = hist.value_at(p)
        assert exact <= approx <= exact * (1 + 1 / 128) + 1


def test_histogram_round_trips_through_its_json_form_and_merges() -> None:
    a, b = LogHistogram(), LogHistogram()
    for v in range(0, 5000, 7):
        a.record(v)
        b.record(v * 3)
    again = LogHistogram.from_buckets(a.buckets())
    assert again.counts == a.counts and again.total == a.total
    a.merge(b)
    assert a.total == 2 * again.total
    with pytest.raises(ValueError):
        a.merge(LogHistogram(sub_bits=4))
    with pytest.raises(ValueError):
        LogHistogram().value_at(50)
    with pytest.raises(ValueError):
        a.record(-1)
