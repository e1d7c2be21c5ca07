"""inject per kind against golden files (regenerate: `python -m tests.unit.inject.cases`, then review the
diff), and the properties every golden input must have: idempotent, reversible, valid Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshctl.inject.documents import dump_documents, inject_documents, uninject_documents
from meshctl.platform.kubernetes.conventions import MIN_KUBERNETES
from tests.unit.inject.cases import INPUTS, MODES, expected, injected, read, summary

CASES = [(path, mode) for path in INPUTS for mode in MODES]
IDS = [f"{path.stem}-{mode}" for path, mode in CASES]
# The oldest Kubernetes the mesh supports and the one the pinned client speaks (kubernetes 37.x: 1.37).
KUBERNETES_VERSIONS = (f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]}.0", "1.37.0")


@pytest.mark.parametrize(("path", "mode"), CASES, ids=IDS)
def test_output_matches_the_golden_file(path: Path, mode: str) -> None:
    manifests, text = injected(path, mode)
    golden, report = expected(path, mode)
    assert manifests == golden.read_text(), f"{golden} is stale: run `python -m tests.unit.inject.cases`"
    assert text == report.read_text()


@pytest.mark.parametrize(("path", "mode"), CASES, ids=IDS)
def test_injecting_twice_is_injecting_once(path: Path, mode: str) -> None:
    once, _ = injected(path, mode)
    documents, reports = inject_documents(read(expected(path, mode)[0]), MODES[mode])
    assert dump_documents(documents, "yaml") == once
    assert not any(r.action == "injected" for r in reports), summary(reports)


@pytest.mark.parametrize(("path", "mode"), CASES, ids=IDS)
def test_uninject_gives_back_the_input(path: Path, mode: str) -> None:
    original = read(path)
    documents, _ = uninject_documents(read(expected(path, mode)[0]))
    assert documents == original


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_uninject_of_what_was_never_injected_changes_nothing(path: Path) -> None:
    documents, reports = uninject_documents(read(path))
    assert documents == read(path)
    assert {r.action for r in reports} <= {"not injected", "skipped"}


def _objects(documents: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for document in documents:
        out.extend(_objects(document["items"]) if document.get("kind") == "List" else [document])
    return out


# Validation is slow (the schemas are resolved at each call): "debug" holds everything "manual" adds.
VALIDATED = [(path, mode) for path, mode in CASES if mode != "manual"]


@pytest.mark.parametrize(("path", "mode"), VALIDATED, ids=[f"{path.stem}-{mode}" for path, mode in VALIDATED])
def test_output_is_valid_for_kubernetes(path: Path, mode: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = 0
    for document in _objects(read(expected(path, mode)[0])):
        if "." in document["apiVersion"].split("/")[0]:
            continue  # a custom resource (ServiceProfile): its schema is the CRD's, not Kubernetes'
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
            checked += 1
    assert checked > 0


def test_every_kind_has_a_golden_input() -> None:
    from meshctl.inject.documents import WORKLOADS

    kinds = {document.get("kind") for path in INPUTS for document in _objects(read(path))}
    assert set(WORKLOADS) <= kinds
    assert {"List"} & {document.get("kind") for path in INPUTS for document in read(path)}
