"""The check registry and the checks/ catalogue stay in step: every code has a document, every document a
code, and each document names its check as the registry describes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.health.explain import all_checks, catalogue_dirs, documented_codes, explain, find_document, listing
from meshctl.health.registry import CATALOGUES, Mode, catalogue

CATALOGUE = Path(__file__).resolve().parents[3] / "checks"
GROUP_CATEGORIES = {
    "1": {"local-platform", "local-version", "pre-install"},
    "2": {"mesh-existence"},
    "3": {"mesh-config"},
    "4": {"mesh-identity"},
    "5": {"control-plane-api"},
    "6": {"prometheus"},
    "7": {"mesh-version"},
    "8": {"data-plane"},
}


def registered() -> dict[str, str]:
    """code -> description, over every platform whose catalogue is part of this tree."""
    return {code: check.description for code, (_, check) in all_checks().items()}


def test_source_tree_catalogue_is_searched_first() -> None:
    assert catalogue_dirs()[0] == CATALOGUE


def test_every_code_has_a_document_and_every_document_a_code() -> None:
    codes, documents = set(registered()), documented_codes(CATALOGUE)
    assert sorted(codes - documents) == [], "codes without checks/<CODE>.md"
    assert sorted(documents - codes) == [], "documents of codes no check has"


def test_each_document_names_its_check_and_has_the_three_sections() -> None:
    for code, description in registered().items():
        text = (CATALOGUE / f"{code}.md").read_text(encoding="utf-8")
        assert text.splitlines()[0] == f"# {code}: {description}", code
        for section in ("## What it verifies", "## Why it fails", "## How to fix it"):
            assert section in text, f"{code}: {section}"


def test_codes_sit_in_the_group_of_their_category() -> None:
    for code, (category, _) in all_checks().items():
        allowed = GROUP_CATEGORIES[code[2]]
        assert category.id in allowed or category.id.startswith("kubernetes"), (code, category.id)


def test_local_catalogue_uses_no_kubernetes_only_code_and_covers_every_mode() -> None:
    local = catalogue("local")
    assert not [c.code for category in local for c in category.checks if c.kubernetes_only]
    modes = {mode for category in local for mode in category.modes}
    assert modes == {Mode.PRE, Mode.INSTALLED, Mode.PROXY}


def test_a_code_shared_by_platforms_keeps_one_description() -> None:
    descriptions: dict[str, set[str]] = {}
    for platform in CATALOGUES:
        try:
            categories = catalogue(platform)
        except ModuleNotFoundError:
            continue
        for category in categories:
            for check in category.checks:
                descriptions.setdefault(check.code, set()).add(check.description)
    assert {code: d for code, d in descriptions.items() if len(d) > 1} == {}


def test_explain_renders_the_document_plain_and_coloured() -> None:
    plain = explain("mc4007")
    assert plain == (CATALOGUE / "MC4007.md").read_text(encoding="utf-8")
    coloured = explain("MC4007", color=True)
    assert "\x1b[1mMC4007: the issuer is within its validity period\x1b[0m" in coloured
    assert "## " not in coloured


def test_explain_falls_back_to_the_registry_without_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meshctl.health.explain.catalogue_dirs", lambda: [Path("/nonexistent")])
    assert find_document("MC4007") is None
    assert explain("MC4007").startswith("MC4007: the issuer is within its validity period\n")


def test_explain_refuses_unknown_and_malformed_codes() -> None:
    from meshctl.errors import UsageError

    with pytest.raises(UsageError, match="not a check code"):
        explain("4007")
    with pytest.raises(UsageError, match="no check has the code MC1999"):
        explain("MC1999", platforms=["local"])


def test_listing_names_every_code_once() -> None:
    lines = listing(["local"]).splitlines()
    assert len(lines) == len({line.split()[0] for line in lines}) == len(all_checks(["local"]))
