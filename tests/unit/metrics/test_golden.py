"""The exposition of a fixed scenario, byte for byte: the bytes are the contract.

Regenerate after an intended change, then review the diff of the golden file:
    MESHCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/metrics/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.metrics.scenario import scenario_metrics

GOLDEN = Path(__file__).parent / "golden" / "exposition.txt"


def test_exposition_matches_golden_file() -> None:
    rendered = scenario_metrics().render()
    if os.environ.get("MESHCTL_UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(rendered)
    assert rendered == GOLDEN.read_bytes(), (
        "exposition changed; if intended, regenerate with "
        "MESHCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/metrics/test_golden.py and review the diff"
    )
