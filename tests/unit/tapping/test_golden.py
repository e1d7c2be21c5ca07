"""The text, wide and JSON renderings of a fixed stream, byte for byte, and replay of a capture.

Regenerate after an intended change, then review the diff:
    MESHCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/tapping/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meshctl.tapping.capture import CaptureWriter, read_capture
from meshctl.tapping.render import drop_note, render
from meshctl.tapping.store import TapStore
from tests.unit.tapping.scenario import scenario

GOLDEN = Path(__file__).parent / "golden"


def lines(events: list, fmt: str) -> str:  # type: ignore[type-arg]
    store = TapStore()
    out = []
    for event in events:
        line = render(event, store.add(event), fmt)
        if line is not None:
            out.append(line)
    return "\n".join(out) + "\n"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MESHCTL_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with MESHCTL_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; regenerate with MESHCTL_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("fmt", ["text", "wide", "json"])
def test_rendering_matches_golden(fmt: str) -> None:
    check_golden(f"tap.{fmt}.txt", lines(scenario(), fmt))


def test_json_lines_are_one_object_each() -> None:
    for line in lines(scenario(), "json").splitlines():
        assert isinstance(json.loads(line), dict)


@pytest.mark.parametrize("fmt", ["text", "wide", "json"])
def test_replay_of_a_capture_prints_the_same_lines(fmt: str, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    writer = CaptureWriter(capture)
    for event in scenario():
        writer.write(event)
    writer.close()
    replayed = list(read_capture(capture))
    assert replayed == scenario()
    assert lines(replayed, fmt) == lines(scenario(), fmt)


def test_trace_ids_from_traceparent_and_b3() -> None:
    text = lines(scenario(), "text")
    assert "trace_id=4bf92f3577b34da6a3ce929d0e0e4736" in text
    assert "trace_id=80f198ee56343ba8" in text


def test_drop_note_names_both_causes() -> None:
    note = drop_note(scenario()[-1])  # type: ignore[arg-type]
    assert note == "tap: webapp-1: 3 dropped (the client read too slowly), 2 over the rate limit (raise --max-rps)"
