"""bench.stall_trace in a real process: a loop blocked in a known function is reported with its stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_a_blocked_loop_is_reported_with_the_blocking_frame(tmp_path: Path) -> None:
    out = tmp_path / "stalls.txt"
    done = subprocess.run(
        [sys.executable, "-m", "bench.stall_trace", "--out", str(out), "--threshold-ms", "20",
         "-m", "tests.unit.bench.stall_target"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = out.read_text()
    assert "1 ms timer lateness (ms)" in report
    stalls = int(report.split("stalls over 20 ms: ")[1].split(";")[0])
    assert stalls >= 1
    assert "main (stall_target.py:" in report  # the frame that held the loop
