"""What the fuzz targets share: bounded Hypothesis settings and the seed corpus kept in the repo.

Each target replays its corpus (tests/reliability/corpus/<target>/) as explicit cases, then runs
Hypothesis for a bounded number of examples (MESHCTL_FUZZ_EXAMPLES, default 150: the three fuzz files
take well under 30 s together). No example database is written: a failure prints its reproducer, which
goes into the corpus once fixed. Set MESHCTL_FUZZ_EXAMPLES=5000 for a longer local run.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = int(os.environ.get("MESHCTL_FUZZ_EXAMPLES", "150"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=1),  # one input is micro- to milliseconds: a second means a hang or a blow-up
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Targets whose inputs are costly to draw (a dozen structured frames each) run a third as many.
FUZZ_HEAVY = settings(FUZZ, max_examples=max(10, EXAMPLES // 3))


def corpus(target: str) -> list[Path]:
    """The seed files of one target, sorted; pytest ids are their names."""
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())
