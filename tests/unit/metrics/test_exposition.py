from __future__ import annotations

import math

from meshctl.metrics.exposition import (
    MAX_LABEL_VALUE_LEN,
    clean_label_value,
    escape_help,
    escape_label_value,
    format_value,
    label_set,
)
from tests.unit.metrics.exposition_parser import parse


def test_label_escapes_backslash_quote_newline() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_help_escapes_backslash_and_newline_only() -> None:
    assert escape_help('a\\b"c\nd') == 'a\\\\b"c\\nd'


def test_clean_keeps_ordinary_values() -> None:
    for value in ("books.booksapp.svc.cluster.local:7000", "GET /books/{id}", "[DEFAULT]", "é", ""):
        assert clean_label_value(value) == value


def test_clean_spells_out_control_characters() -> None:
    assert clean_label_value("a\x1b[2Jb\r\n\x00\x85") == "a\\x1b[2Jb\\x0d\\x0a\\x00\\x85"


def test_clean_makes_lone_surrogates_encodable() -> None:
    cleaned = clean_label_value("host\udcff")
    assert cleaned == "host\\udcff"
    cleaned.encode("utf-8")


def test_clean_bounds_length_even_after_spelling_out() -> None:
    assert len(clean_label_value("x" * 100_000)) == MAX_LABEL_VALUE_LEN
    assert len(clean_label_value("\x00" * 200)) == MAX_LABEL_VALUE_LEN
    assert clean_label_value("x" * 1000).endswith("[TRUNCATED]")


def test_label_set_round_trips_through_an_independent_parser() -> None:
    hostile = 'x"} 1\nother_total{y="\\'
    line = "m{" + label_set((("a", hostile), ("b", "plain"))) + "} 1\n"
    exposition = parse(line)
    assert exposition.samples == [("m", (("a", hostile), ("b", "plain")), 1.0)]


def test_format_value() -> None:
    assert format_value(3) == "3"
    assert format_value(2.0) == "2"
    assert format_value(0.25) == "0.25"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert float(format_value(1e20)) == 1e20
