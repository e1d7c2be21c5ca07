"""The golden cases: every input under golden/in, injected in each mode, with their expected output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshctl.inject.documents import Report, dump_documents, inject_documents, parse_documents
from meshctl.inject.pod import InjectOptions

GOLDEN = Path(__file__).resolve().parent / "golden"
INPUTS = sorted((GOLDEN / "in").iterdir())
VERSION = "0.0.0-golden"  # not the package's version: a release must not rewrite every golden file
MODES = {
    "annotated": InjectOptions(VERSION),
    "manual": InjectOptions(VERSION, manual=True),
    "debug": InjectOptions(VERSION, manual=True, debug_sidecar=True),
}


def read(path: Path) -> list[Any]:
    return parse_documents(path.read_text(), path.name)


def injected(path: Path, mode: str) -> tuple[str, str]:
    """(manifests, summary) of one input in one mode, as `meshctl inject` prints them."""
    documents, reports = inject_documents(read(path), MODES[mode])
    return dump_documents(documents, "yaml"), summary(reports)


def summary(reports: list[Report]) -> str:
    return "".join(f"{report}\n" for report in reports)


def expected(path: Path, mode: str) -> tuple[Path, Path]:
    return GOLDEN / mode / f"{path.stem}.yaml", GOLDEN / mode / f"{path.stem}.txt"


def regenerate() -> None:
    for mode in MODES:
        (GOLDEN / mode).mkdir(exist_ok=True)
        for path in INPUTS:
            manifests, text = injected(path, mode)
            out, report = expected(path, mode)
            out.write_text(manifests)
            report.write_text(text)


if __name__ == "__main__":
    regenerate()
