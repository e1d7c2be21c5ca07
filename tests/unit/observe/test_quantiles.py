"""Quantiles from cumulative buckets must equal Prometheus' histogram_quantile (values checked by hand)."""

from __future__ import annotations

import math

import pytest

from meshctl.observe.quantiles import bucket_of, parse_le, quantile

INF = math.inf


def test_interpolates_linearly_inside_the_bucket() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (INF, 40.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.15)  # rank 20: half way through (0.1, 0.2]
    assert quantile(0.25, buckets) == pytest.approx(0.1)  # rank 10: the end of the first bucket
    assert quantile(0.9, buckets) == pytest.approx(0.2 + 0.3 * (6 / 10))


def test_first_bucket_starts_at_zero() -> None:
    assert quantile(0.5, [(0.004, 0.0), (0.005, 10.0), (INF, 10.0)]) == pytest.approx(0.0045)
    assert quantile(0.5, [(0.01, 10.0), (INF, 10.0)]) == pytest.approx(0.005)


def test_rank_in_inf_bucket_is_the_highest_finite_bound() -> None:
    assert quantile(0.99, [(1.0, 90.0), (50.0, 98.0), (INF, 100.0)]) == 50.0


def test_no_observation_or_no_inf_bucket_is_none() -> None:
    assert quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert quantile(0.5, [(0.1, 3.0), (0.2, 4.0)]) is None
    assert quantile(0.5, []) is None


def test_unsorted_duplicated_and_non_monotonic_buckets_are_cleaned() -> None:
    # Two series summed client-side arrive as duplicates; a non-atomic scrape may dip.
    buckets = [(INF, 20.0), (0.2, 10.0), (0.1, 4.0), (0.2, 10.0), (0.1, 6.0), (0.05, 12.0)]
    # merged: 0.05 -> 12, 0.1 -> 10 (raised to 12), 0.2 -> 20, inf -> 20
    assert quantile(0.5, buckets) == pytest.approx(0.05 * 10 / 12)
    assert quantile(0.9, buckets) == pytest.approx(0.1 + 0.1 * (18 - 12) / 8)


def test_nan_counts_are_ignored() -> None:
    assert quantile(0.5, [(0.1, math.nan), (0.2, 10.0), (INF, 10.0)]) == pytest.approx(0.1)


def test_parse_le_and_bucket_of() -> None:
    assert parse_le("+Inf") == INF and parse_le("0.25") == 0.25
    bounds = [1, 2, 5, 10]
    assert bucket_of(0.5, bounds) == (0.0, 1)
    assert bucket_of(2, bounds) == (1, 2)
    assert bucket_of(7, bounds) == (5, 10)
    assert bucket_of(11, bounds) == (10, INF)
