"""RFC 6902 JSON Patch from a document before and after a change, as the injector returns it.

Mappings are compared key by key (keys escaped per RFC 6901: `~` → `~0`, `/` → `~1`, which matters for
annotation keys such as `meshctl.io/inject`). A list that only gained items (a subsequence of the new list)
gets one `add` per new item; any other change to a list replaces it whole, which is always correct.
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]


def pointer(parts: list[str]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def make_patch(before: Any, after: Any) -> list[Operation]:
    operations: list[Operation] = []
    _diff(before, after, [], operations)
    return operations


def _diff(before: Any, after: Any, path: list[str], out: list[Operation]) -> None:
    if _same(before, after):
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            if key not in after:
                out.append({"op": "remove", "path": pointer([*path, key])})
        for key, value in after.items():
            if key in before:
                _diff(before[key], value, [*path, key], out)
            else:
                out.append({"op": "add", "path": pointer([*path, key]), "value": value})
        return
    if isinstance(before, list) and isinstance(after, list):
        added = _insertions(before, after)
        if added is not None:
            # ascending indices of `after`: each add shifts the rest exactly as the final list has them
            out.extend({"op": "add", "path": pointer([*path, str(i)]), "value": after[i]} for i in added)
            return
        if len(before) == len(after):
            for index, (old, new) in enumerate(zip(before, after, strict=True)):
                _diff(old, new, [*path, str(index)], out)
            return
    out.append({"op": "replace", "path": pointer(path), "value": after})


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: True and 1 differ (Python's == says they are equal)."""
    if type(a) is not type(b) and not (isinstance(a, int | float) and isinstance(b, int | float)):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _insertions(before: list[Any], after: list[Any]) -> list[int] | None:
    """The indices of `after` that are new when `before` is a subsequence of it (greedy), else None."""
    if len(after) <= len(before):
        return None
    new: list[int] = []
    position = 0
    for index, value in enumerate(after):
        if position < len(before) and _same(before[position], value):
            position += 1
        else:
            new.append(index)
    return new if position == len(before) else None
