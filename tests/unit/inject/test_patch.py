"""make_patch against an independent RFC 6902 implementation (jsonpatch): applying the patch to `before`
must give `after` exactly, for any JSON documents."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from meshctl.inject.patch import make_patch, pointer

KEYS = st.sampled_from(["a", "b", "meshctl.io/inject", "x~y", "", "containers", "0"])
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16) | st.text(max_size=3)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12
)


def apply(before: Any, operations: list[dict[str, Any]]) -> Any:
    return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(before))


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: True is not 1, but 0 and 0.0 are one number (RFC 6902, section 4.6)."""
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) | isinstance(b, bool):
        return a == b
    return type(a) is type(b) and (
        all(same(a[k], b[k]) for k in a) and a.keys() == b.keys() if isinstance(a, dict)
        else len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True)) if isinstance(a, list)
        else a == b
    )  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(JSON, JSON)
def test_the_patch_turns_before_into_after(old: Any, new: Any) -> None:
    before, after = {"doc": old}, {"doc": new}  # a patch cannot replace the root: jsonpatch needs an object
    assert same(apply(before, make_patch(before, after)), after)


@settings(max_examples=60, deadline=None)
@given(st.lists(JSON, max_size=5), st.lists(st.tuples(st.integers(0, 6), JSON), max_size=3))
def test_insertions_into_a_list_are_adds(items: list[Any], inserts: list[tuple[int, Any]]) -> None:
    after = list(items)
    for index, value in inserts:
        after.insert(min(index, len(after)), value)
    operations = make_patch({"l": items}, {"l": after})
    assert same(apply({"l": items}, operations), {"l": after})
    if inserts:
        assert {op["op"] for op in operations} == {"add"}


def test_equal_documents_need_no_patch_and_booleans_are_not_numbers() -> None:
    assert make_patch({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == []
    assert make_patch({"a": 1}, {"a": True}) == [{"op": "replace", "path": "/a", "value": True}]


def test_keys_with_slashes_and_tildes_are_escaped() -> None:
    assert pointer(["metadata", "annotations", "meshctl.io/inject"]) == "/metadata/annotations/meshctl.io~1inject"
    assert pointer(["a~b"]) == "/a~0b"
    before = {"metadata": {"annotations": {"x": "1"}}}
    after = {"metadata": {"annotations": {"x": "1", "meshctl.io/inject": "enabled"}}}
    assert make_patch(before, after) == [
        {"op": "add", "path": "/metadata/annotations/meshctl.io~1inject", "value": "enabled"}
    ]
