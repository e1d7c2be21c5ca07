"""Fuzzing the resource loader (meshctl/resources/loader.py): any text or bytes → resources or one clean error.

Properties: `parse_text` and `load_file` raise nothing but ResourceError (a ConfigError: one located
line per problem, never a traceback); every message line names its source; a resource that loads
round-trips through `to_document` to the same spec. Inputs: YAML/JSON documents built from the
resources' own vocabulary with values of every type, mutated text, and raw bytes.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from meshctl.resources import MeshResource, ResourceError, load_file, parse_text
from tests.reliability.fuzzing import FUZZ, FUZZ_HEAVY, corpus

KEYS = ["apiVersion", "kind", "metadata", "spec", "name", "namespace", "labels", "routes", "condition", "method",
        "pathRegex", "all", "any", "not", "responseClasses", "isFailure", "status", "min", "max", "timeout",
        "isRetryable", "retryBudget", "retryRatio", "minRetriesPerSecond", "ttl", "rules", "host", "paths",
        "pathPrefix", "service", "port", "items"]  # fmt: skip
STRINGS = ["meshctl.io/v1alpha1", "linkerd.io/v1alpha2", "ServiceProfile", "MeshIngress", "List",
           "books.booksapp.svc.cluster.local", "booksapp", "webapp", "GET", "/", "/books/\\d+", "/(a+)+", "(?=x)",
           "([", "300ms", "1m30s", "-1s", "shop.example.com", "*.example.com", "", "\x00", "\u202e",
           "1e999"]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(STRINGS), st.text(max_size=12), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6), st.integers()), inner, max_size=5),
    ),
    max_leaves=16,
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Mostly resource-shaped: the right top-level keys with kinds and specs drawn from the vocabulary."""
    if draw(st.integers(0, 4)) == 0:
        return draw(values)
    doc: dict[Any, Any] = {
        "apiVersion": draw(st.sampled_from(STRINGS[:2]) | scalars),
        "kind": draw(st.sampled_from(["ServiceProfile", "MeshIngress", "List"]) | scalars),
        "metadata": draw(st.fixed_dictionaries({"name": st.sampled_from(STRINGS) | scalars},
                                                optional={"namespace": st.sampled_from(STRINGS) | scalars,
                                                          "labels": values}) | values),  # fmt: skip
        "spec": draw(values),
    }
    for key in draw(st.lists(st.sampled_from(list(doc)), max_size=2)):
        doc.pop(key, None)
    return doc


def dump(document: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(document, default=str)
    return yaml.safe_dump(document, allow_unicode=True)


def check(text: str, source: str = "fuzz.yaml") -> list[MeshResource]:
    try:
        resources = parse_text(text, source)
    except ResourceError as exc:
        assert exc.problems and all(line.strip() for line in str(exc).splitlines())
        assert all(p.source == source for p in exc.problems)
        return []
    for resource in resources:
        (again,) = parse_text(yaml.safe_dump(resource.to_document(), allow_unicode=True), "again.yaml")
        assert again.spec == resource.spec and again.key == resource.key
    return resources


@FUZZ_HEAVY
@given(docs=st.lists(documents(), min_size=1, max_size=3), as_json=st.booleans())
def test_any_document_loads_or_fails_cleanly(docs: list[Any], as_json: bool) -> None:
    try:
        texts = [dump(doc, as_json) for doc in docs]
    except (ValueError, TypeError, yaml.YAMLError):
        return  # not expressible in that format (keys JSON cannot hold): nothing to load
    check("---\n".join(texts) if not as_json else texts[0])


@FUZZ_HEAVY
@given(doc=documents(), cut=st.integers(min_value=0), insert=st.sampled_from(["", ":", "- ", "\t", "{", "&a ", "*a",
       "!!python/object:os.system ", "\n  ", "\x00", "'", "---\n", "? "]))  # fmt: skip
def test_mutated_text_fails_cleanly(doc: Any, cut: int, insert: str) -> None:
    try:
        text = dump(doc, False)
    except (ValueError, TypeError, yaml.YAMLError):
        return
    at = cut % (len(text) + 1)
    check(text[:at] + insert + text[at:])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "r.yaml"


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_file_bytes_fail_cleanly(data: bytes, scratch: Path) -> None:
    scratch.write_bytes(data)
    with contextlib.suppress(ResourceError):
        load_file(scratch)


@pytest.mark.parametrize("path", corpus("resources"), ids=lambda p: p.name)
def test_resources_corpus(path: Path) -> None:
    try:
        resources = load_file(path)
    except ResourceError as exc:
        assert str(path) in str(exc) and "Traceback" not in str(exc)
        return
    check(path.read_text(encoding="utf-8"), str(path))
    assert resources
