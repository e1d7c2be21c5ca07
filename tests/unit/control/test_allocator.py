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
