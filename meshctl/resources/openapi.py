"""Builders of openAPIV3 schema nodes, in the structural subset Kubernetes accepts in a CRD.

Each kind's module writes its `SPEC_SCHEMA` with these: every node has a `type` and a `description`;
objects list their `properties` (anything else is refused), lists their `items`. Two keywords carry the
wording of `meshctl apply`'s messages: `title` is what a value should be ("a service name (a DNS label:
a-z, 0-9, -)"), used in "expected <title>, got ..."; `example` is a valid value, shown by `kubectl
explain` and used by the tests that build a maximal document of every kind.

These are plain dicts and nothing is checked here (meshctl.resources.schema validates), so a kind's
module stays cheap for the proxy, which imports kind modules to read its configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = dict[str, Any]

# Go's time.ParseDuration syntax (fields.parse_duration): "300ms", "1.5s", "1m30s".
DURATION_PATTERN = r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$"
DURATION_TITLE = 'a duration such as "300ms", "1.5s" or "1m30s"'
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def _node(kind: str, description: str, title: str | None, example: object | None) -> Schema:
    node: Schema = {"type": kind, "description": description}
    if title is not None:
        node["title"] = title
    if example is not None:
        node["example"] = example
    return node


def obj(
    description: str,
    properties: Mapping[str, Schema],
    *,
    required: tuple[str, ...] = (),
    min_properties: int | None = None,
    title: str | None = None,
    one_of: tuple[tuple[str, ...], ...] = (),
) -> Schema:
    """An object whose only fields are `properties` (in the order messages list them). `one_of`: groups of
    fields of which exactly one must be present (`oneOf` of `required` lists: structural, as it names no
    type)."""
    unknown = [name for name in (*required, *(n for group in one_of for n in group)) if name not in properties]
    if unknown:
        raise ValueError(f"required fields without a schema: {unknown}")
    node = _node("object", description, title, None)
    node["properties"] = dict(properties)
    if required:
        node["required"] = list(required)
    if min_properties is not None:
        node["minProperties"] = min_properties
    if one_of:
        node["oneOf"] = [{"required": list(group)} for group in one_of]
    return node


def map_of(description: str, values: Schema, *, example: Mapping[str, object], title: str | None = None) -> Schema:
    """An object of any keys whose values all follow `values` (Kubernetes' map type)."""
    node = _node("object", description, title, dict(example))
    node["additionalProperties"] = values
    return node


def free_object(description: str) -> Schema:
    """An object of any content, kept as written: where a recursive shape stops unrolling (structural
    schemas have no references); the kind's parser checks what is inside."""
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def array(description: str, items: Schema, *, min_items: int | None = None, title: str | None = None) -> Schema:
    node = _node("array", description, title, None)
    node["items"] = items
    if min_items is not None:
        node["minItems"] = min_items
    return node


def string(
    description: str,
    *,
    title: str | None = None,
    pattern: str | None = None,
    enum: tuple[str, ...] | None = None,
    max_length: int | None = None,
    example: str | None = None,
) -> Schema:
    """A non-empty string (the parsers refuse "" everywhere)."""
    node = _node("string", description, title, example)
    node["minLength"] = 1
    if max_length is not None:
        node["maxLength"] = max_length
    if pattern is not None:
        node["pattern"] = pattern
    if enum is not None:
        node["enum"] = list(enum)
    return node


def integer(
    description: str, *, minimum: int | None = None, maximum: int | None = None, example: int | None = None
) -> Schema:
    node = _node("integer", description, None, example)
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return node


def number(
    description: str, *, minimum: float | None = None, maximum: float | None = None, example: float | None = None
) -> Schema:
    node = _node("number", description, None, example)
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return node


def boolean(description: str) -> Schema:
    return _node("boolean", description, None, None)


def duration(description: str, example: str = "1s") -> Schema:
    return string(description, title=DURATION_TITLE, pattern=DURATION_PATTERN, example=example)


def dns_label(description: str, what: str, example: str) -> Schema:
    """A Kubernetes object name such as a service or a namespace."""
    return string(
        description, title=f"{what} (a DNS label: a-z, 0-9, -)", pattern=DNS_LABEL_PATTERN, max_length=63,
        example=example,
    )  # fmt: skip
