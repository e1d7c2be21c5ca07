"""bench.profile's summary of py-spy's collapsed stacks: self and cumulative samples per function."""

from __future__ import annotations

from bench.profile import render_profile, summarize_collapsed

RAW = """\
process 1:"python";main (bench/sidecar.py:90);data_received (h1/downstream.py:108);feed (h1/codec.py:240) 7
process 1:"python";main (bench/sidecar.py:90);data_received (h1/downstream.py:112) 2
process 1:"python";main (bench/sidecar.py:90);data_received (h1/downstream.py:108);feed (h1/codec.py:245) 1
not a stack line
"""


def test_lines_of_one_function_are_one_entry_and_recursion_counts_once() -> None:
    total, own, cumulative = summarize_collapsed(RAW + 'process 1:"python";f (a.py:1);f (a.py:2) 5\n')
    assert total == 15
    assert own[0] == ("feed (codec.py)", 8)
    assert ("data_received (downstream.py)", 2) in own
    assert ("f (a.py)", 5) in own
    assert dict(cumulative)["main (sidecar.py)"] == 10
    assert dict(cumulative)["f (a.py)"] == 5  # on the stack twice, counted once per sample


def test_render_gives_percentages_of_each_process() -> None:
    text = render_profile("title", {"proxy": RAW, "empty": ""}, top=2)
    assert "== proxy: 10 samples (on CPU) ==" in text
    assert "  80.0        8  feed (codec.py)" in text
    assert "== empty: 0 samples (on CPU) ==" in text
