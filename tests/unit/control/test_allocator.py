"""The control plane's malloc setting: taken by glibc, and left alone when the operator set it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshctl.control.allocator import one_arena


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_one_arena_is_taken_in_a_fresh_process_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = "from meshctl.control.allocator import one_arena; print(one_arena())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert one_arena() is False


TRIM_PROBE = """
import gc
from meshctl.control.allocator import trim

def rss_kib():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))

blocks = [bytes(1000) * 1 + bytes([i % 256]) for i in range(40_000)]  # ~40 MB from glibc's heap
kept = blocks[::100]  # every hundredth stays, so the heap's top cannot simply shrink
del blocks
gc.collect()
before = rss_kib()
print(trim(), before - rss_kib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_gives_free_pages_between_live_blocks_back() -> None:
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True).stdout
    took, freed_kib = out.split()
    assert took == "True"
    assert int(freed_kib) > 20_000  # most of the ~39 MB freed between the kept blocks
