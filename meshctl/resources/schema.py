"""Validation of a value against a kind's openAPIV3 schema: the check the API server makes with the CRD
that `meshctl install` renders, made by `meshctl apply` with the very same schema.

Only the structural subset the kinds use is understood (meshctl.resources.openapi builds it): type,
properties and required, items, enum, pattern, minLength/maxLength, minimum/maximum, minItems,
minProperties and x-kubernetes-preserve-unknown-fields. As on the API server, a null value counts as
absent. Unlike it, an unknown field is refused rather than dropped: a typo must not silently lose a
setting. Messages keep the resource parsers' wording: "spec.routes[0].timeout: expected a duration ...,
got "fast"".

Patterns run on RE2, the regular expression engine of the API server (Go), so a value is judged alike
on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Any

from meshctl.resources.fields import Problem, child, describe, item, known_keys, range_text

_WHAT = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
}


def validate(value: object, schema: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    """Append a Problem for each place `value` breaks `schema` (at most one per field)."""
    kind = schema.get("type")
    if kind == "object":
        _object(value, schema, path, problems)
    elif kind == "array":
        _array(value, schema, path, problems)
    elif kind == "string":
        _string(value, schema, path, problems)
    elif kind in ("integer", "number"):
        _number(value, schema, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(Problem(path, f"expected {_what(schema)}, got {describe(value)}"))
    else:  # a schema mistake, not a document's: the tests walk every kind's schema
        raise ValueError(f"{path or 'the root'}: schema node without a known type: {kind!r}")


def _what(schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str):
        return title
    kind = str(schema.get("type"))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        return _WHAT[kind] + range_text(low, high)
    return _WHAT.get(kind, kind)


def _object(value: object, schema: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        problems.append(Problem(path, f"expected {_what(schema)}, got {describe(value)}"))
        return
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return  # kept as written; the kind's parser judges it
    values = schema.get("additionalProperties")
    if isinstance(values, Mapping):  # a map: any key, every value of one shape
        for key, entry in value.items():
            validate(entry, values, child(path, key), problems)
        return
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    known_keys(value, path, problems, tuple(properties))
    present = [key for key in properties if value.get(key) is not None]
    for key in present:
        validate(value[key], properties[key], child(path, key), problems)
    for key in schema.get("required", ()):
        if value.get(key) is None:
            problems.append(Problem(child(path, key), _missing(properties[key])))
    groups = [alternative["required"] for alternative in schema.get("oneOf", ())]
    if groups and sum(all(value.get(key) is not None for key in group) for group in groups) != 1:
        problems.append(Problem(path, f"expected exactly one of {' or '.join('+'.join(g) for g in groups)}"))
    at_least = schema.get("minProperties")
    if at_least is not None and len(present) < at_least and set(value) <= set(properties):
        problems.append(Problem(path, f"expected at least one of {', '.join(properties)}"))


def _missing(schema: Mapping[str, Any]) -> str:
    """ "missing (what the field is)": the first sentence of its description."""
    sentence = str(schema.get("description", "")).split(". ")[0].rstrip(".")
    return f"missing ({sentence[:1].lower()}{sentence[1:]})" if sentence else "missing"


def _array(value: object, schema: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    if not isinstance(value, list):
        problems.append(Problem(path, f"expected {_what(schema)}, got {describe(value)}"))
        return
    at_least = schema.get("minItems")
    if at_least is not None and len(value) < at_least:
        got = "an empty list" if not value else f"{len(value)} items"
        problems.append(Problem(path, f"expected {_what(schema)}, got {got}"))
    for index, entry in enumerate(value):
        validate(entry, schema["items"], item(path, index), problems)


def _string(value: object, schema: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    wrong = not isinstance(value, str)
    if isinstance(value, str):
        enum = schema.get("enum")
        wrong = (
            (enum is not None and value not in enum)
            or len(value) < schema.get("minLength", 0)
            or len(value) > schema.get("maxLength", len(value))
            or ("pattern" in schema and not _compiled(schema["pattern"]).search(value))
        )
    if wrong:
        problems.append(Problem(path, f"expected {_string_what(schema)}, got {describe(value)}"))


def _string_what(schema: Mapping[str, Any]) -> str:
    enum = schema.get("enum")
    if "title" in schema or not enum:
        return _what(schema)
    return " or ".join(str(choice) for choice in enum)


def _number(value: object, schema: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    integral = schema.get("type") == "integer"
    fits = isinstance(value, int) if integral else isinstance(value, int | float) and math.isfinite(value)
    if isinstance(value, bool) or not fits:
        problems.append(Problem(path, f"expected {_what(schema)}, got {describe(value)}"))
        return
    assert isinstance(value, int | float)
    low, high = schema.get("minimum"), schema.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        problems.append(Problem(path, f"expected {_what(schema)}, got {value!r}"))


@cache
def _compiled(pattern: str) -> Any:
    import re2  # loaded on first use: most commands never validate a resource

    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)
