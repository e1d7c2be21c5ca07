"""bench.cpu_split's parser on a captured `perf report --sort pid,dso -n -v -t TAB` of CPU 1 while wrk drove
bench.floor (pid 27882) in front of nginx; another engineer's profiled Python process (27916) shared the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cpu_split import CATEGORIES, category, parse_report, summarize, us_per_request

CAPTURED = (Path(__file__).parent / "perf_report_pid_dso.txt").read_text()
FLOOR_PID = 27882


def test_every_row_of_a_captured_report_is_read() -> None:
    rows = parse_report(CAPTURED)
    assert len(rows) == 38
    first = rows[0]
    assert (first.samples, first.pid, first.comm, first.dso) == (1269, FLOOR_PID, "python", "[kernel.kallsyms]")
    # Commands with colons, threads without a name and deleted mappings keep their columns.
    assert any(r.comm == "memfd:sealed-91" and r.dso == "/memfd:sealed-91173221a7ea (deleted)" for r in rows)
    assert any(r.comm == ":27925" for r in rows)


def test_samples_perf_could_not_tie_to_a_thread_are_read_and_left_out() -> None:
    # Captured during the mesh-1hop arm of a bench run.
    rows = parse_report(" 0.02%  \t 1          \t     -1::-1            \t[kernel.kallsyms]\n")
    assert [(r.samples, r.pid, r.comm, r.dso) for r in rows] == [(1, -1, ":-1", "[kernel.kallsyms]")]
    assert summarize(rows, [FLOOR_PID])["others_samples"] == 1


def test_the_floor_process_splits_into_its_shared_objects_and_others_are_left_out() -> None:
    split = summarize(parse_report(CAPTURED), [FLOOR_PID])
    assert split["by_category"] == {"kernel": 1269 + 2, "libpython": 298, "uvloop": 95, "httptools": 150,
                                    "ssl+crypto": 0, "ngh2": 0, "haproxy": 0, "other": 53}  # fmt: skip
    assert split["samples"] == 1867
    total = sum(r.samples for r in parse_report(CAPTURED))
    assert split["others_samples"] == total - 1867 > 600  # the profiled process on the same core


def test_microseconds_are_shares_of_the_measured_cpu_per_request() -> None:
    split = {"samples": 200, "by_category": dict.fromkeys(CATEGORIES, 0) | {"kernel": 150, "libpython": 50}}
    us = us_per_request(split, 40.0)
    assert us["kernel"] == pytest.approx(30.0)
    assert us["libpython"] == pytest.approx(10.0)
    assert sum(us.values()) == pytest.approx(40.0)
    assert us_per_request({"samples": 0, "by_category": {}}, 40.0) == {}


@pytest.mark.parametrize(
    ("dso", "where"),
    [
        ("[kernel.kallsyms]", "kernel"),
        ("/tmp/perf-vdso.so-f7ZLQw", "kernel"),
        ("[vdso]", "kernel"),
        ("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", "libpython"),
        ("/usr/bin/python3.11", "libpython"),
        ("/x/.venv/lib/python3.11/site-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so", "uvloop"),
        ("loop.cpython-311-x86_64-linux-gnu.so", "uvloop"),
        ("/x/site-packages/httptools/parser/parser.cpython-311-x86_64-linux-gnu.so", "httptools"),
        ("/usr/lib/x86_64-linux-gnu/libssl.so.3", "ssl+crypto"),
        ("/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "ssl+crypto"),
        ("/p/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", "ssl+crypto"),
        ("/x/site-packages/ngh2/_core.cpython-311-x86_64-linux-gnu.so", "ngh2"),
        ("/usr/sbin/haproxy", "haproxy"),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "other"),
        ("[unknown]", "other"),
    ],
)
def test_shared_objects_fall_in_their_column(dso: str, where: str) -> None:
    assert category(dso) == where


def test_text_that_is_not_a_report_is_refused() -> None:
    with pytest.raises(ValueError, match="not a perf report row"):
        parse_report("# header\n 12.0% [kernel.kallsyms]\n")
