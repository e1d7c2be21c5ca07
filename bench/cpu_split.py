"""Where each arm's CPU goes: `perf record` on the proxies' core during one wrk run, split by shared object.

    perf record -e cpu-clock -C <proxy cpu> -F 999   # software clock sampling: works without hardware counters
    perf report --sort pid,dso -n -v -t '\\t'         # samples per process and shared object, full paths

Only the arm's own processes are counted (the shared machine runs other work on the same core, and
`perf report --pid` drops most entries of this perf version, so the filter is ours). Each category's
share of those samples times the arm's measured CPU µs per request gives µs per request by where.
Without a working perf (not installed, not permitted) the split is skipped with one line.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Processes

CATEGORIES = ("kernel", "libpython", "uvloop", "httptools", "ssl+crypto", "ngh2", "haproxy", "other")
FREQUENCY_HZ = 999
# pid -1 ("-1::-1") is perf's for samples it could not tie to a thread.
_ROW = re.compile(r"^\s*([\d.]+)%\s*\t\s*(\d+)\s*\t\s*(-?\d+):(.*?)\s*\t(.*?)\s*$")


@dataclass(frozen=True)
class Row:
    samples: int
    pid: int
    comm: str
    dso: str


def parse_report(text: str) -> list[Row]:
    """The rows of `perf report --sort pid,dso -n -t '\\t'` (comment and blank lines skipped)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = _ROW.match(line)
        if match is None:
            raise ValueError(f"not a perf report row (--sort pid,dso -n -t TAB): {line.strip()[:120]!r}")
        rows.append(Row(int(match[2]), int(match[3]), match[4].strip(), match[5]))
    return rows


def category(dso: str) -> str:
    """Which column of the split a shared object (full path, or perf's short name) belongs to."""
    name = dso.rsplit("/", 1)[-1]
    if dso.startswith("[kernel") or dso == "[vdso]" or name.startswith("perf-vdso.so"):
        return "kernel"
    if name.startswith("libpython") or re.fullmatch(r"python3(\.\d+)?", name):
        return "libpython"
    if "/uvloop/" in dso or (dso == name and name.startswith("loop.cpython")):
        return "uvloop"
    if "/httptools/" in dso or (dso == name and name.startswith(("parser.cpython", "url_parser.cpython"))):
        return "httptools"
    if name.startswith(("libssl", "libcrypto", "_ssl.cpython")):
        return "ssl+crypto"
    if "/ngh2/" in dso or name.startswith("libnghttp2"):
        return "ngh2"
    if name == "haproxy":
        return "haproxy"
    return "other"


def summarize(rows: Sequence[Row], pids: Sequence[int]) -> dict[str, Any]:
    """Samples of the given processes by category, and how many samples on the core were someone else's."""
    mine = [r for r in rows if r.pid in set(pids)]
    by_category = dict.fromkeys(CATEGORIES, 0)
    for row in mine:
        by_category[category(row.dso)] += row.samples
    total = sum(r.samples for r in rows)
    arm = sum(by_category.values())
    return {"samples": arm, "others_samples": total - arm, "by_category": by_category}


def us_per_request(split: dict[str, Any], cpu_us_per_request: float) -> dict[str, float]:
    """Each category's share of the arm's samples × the arm's CPU µs per request."""
    samples = split["samples"]
    if not samples:
        return {}
    return {cat: n / samples * cpu_us_per_request for cat, n in split["by_category"].items()}


def _record_argv(cpu: int, out: Path) -> list[str]:
    # -B -N: no build-id pass at exit (seconds of CPU for nothing the split needs).
    return ["perf", "record", "-q", "-e", "cpu-clock", "-C", str(cpu), "-F", str(FREQUENCY_HZ), "-B", "-N",
            "-o", str(out)]  # fmt: skip


def _report(data: Path, timeout_s: float = 60.0) -> str:
    done = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--sort", "pid,dso", "-n", "-v", "-t", "\t"],
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["perf report failed"])[-1])
    return done.stdout


def probe(cpu: int, work_dir: Path) -> str | None:
    """None when `perf record -C cpu` and `perf report` work here; otherwise why not, in one line."""
    data = work_dir / "perf-probe.data"
    try:
        done = subprocess.run([*_record_argv(cpu, data), "--", "sleep", "0.2"], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return f"perf record failed: {lines[0] if lines else done.returncode}"
        parse_report(_report(data))
    except FileNotFoundError:
        return "perf is not installed (apt-get install linux-perf)"
    except (OSError, subprocess.TimeoutExpired, RuntimeError, ValueError) as exc:
        return f"perf does not work here: {exc}"
    return None


class Splitter:
    """Records the proxies' core around one measured run and keeps the split of the arm's processes."""

    def __init__(self, procs: Processes, cpu: int, record_cpu: int) -> None:
        self.procs, self.cpu, self.record_cpu = procs, cpu, record_cpu

    @contextlib.contextmanager
    def around(self, tag: str, pids: Sequence[int]) -> Iterator[dict[str, Any]]:
        """Yields a dict filled, after the block, with summarize()'s figures or {"error": why}."""
        data = self.procs.log_dir / f"perf-{tag}.data"
        out: dict[str, Any] = {}
        proc = self.procs.start(f"perf-{tag}", _record_argv(self.cpu, data), cpu=self.record_cpu)
        try:
            yield out
        finally:
            self.procs.stop(proc, grace_s=20.0)  # SIGTERM: perf record writes its file and exits
        try:
            out.update(summarize(parse_report(_report(data)), pids))
        except (OSError, subprocess.TimeoutExpired, RuntimeError, ValueError) as exc:
            out["error"] = str(exc)
        with contextlib.suppress(OSError):
            data.unlink()  # tens of MB each; the split is kept in the results


def split_markdown(runs: Sequence[dict[str, Any]], skipped: str = "") -> list[str]:
    """The table "CPU µs per request by where" from the throughput runs that carry a split."""
    if skipped:
        return [f"No CPU split by shared object in this run: {skipped}.", ""]
    split_runs = [r for r in runs if "cpu_split" in r]
    if not split_runs:
        return []
    lines = [
        "### CPU µs per request by where (`perf record -e cpu-clock -C 1 -F 999`, first wrk round)",
        "",
        "Each arm's samples on the proxies' core by shared object, counted for the arm's own processes only, "
        "× that round's CPU µs per request. *others* = samples on the core that were other processes' "
        "(the shared machine), left out. *other* = libc and everything not named.",
        "",
        "| arm | CPU µs/req | " + " | ".join(CATEGORIES) + " | samples | others |",
        "|---|---|" + "---|" * len(CATEGORIES) + "---|---|",
    ]
    for run in split_runs:
        split, cpu, rps = run["cpu_split"], sum(run["proxy_cpu"].values()), run["rps"]
        if "error" in split:
            rest = " | ".join("–" * (len(CATEGORIES) + 1))
            lines.append(f"| {run['arm']} | – | perf failed: {split['error'][:80]} | {rest} |")
            continue
        cost = cpu / rps * 1e6 if rps > 0 else 0.0
        us = us_per_request(split, cost)
        share = split["others_samples"] / max(1, split["samples"] + split["others_samples"])
        cells = " | ".join(f"{us.get(cat, 0.0):.1f}" for cat in CATEGORIES)
        lines.append(f"| {run['arm']} | {cost:.1f} | {cells} | {split['samples']} | {share:.0%} |")
    return [*lines, ""]
