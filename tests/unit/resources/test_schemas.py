"""Every kind's openAPIV3 schema: present, structural as Kubernetes requires, and in agreement with the
kind's parser — the schema `meshctl install` puts in the CRD must accept exactly the fields `meshctl
apply` knows, so a maximal document of every kind passes both and comes back unchanged.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
import textwrap
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import pytest

import meshctl.resources
from meshctl.resources import KINDS, KindDef, Problem, parse_document, parse_text
from meshctl.resources import fields as fields_module
from meshctl.resources.schema import validate

SKIP = object()  # a field the maximal example leaves out: kept as written by the schema, checked by the parser


def _names(definition: KindDef) -> tuple[str, str]:
    fqdn = "books.booksapp.svc.cluster.local"
    return ("books", "booksapp") if definition.check_name("books") is None else (fqdn, "booksapp")


def document(definition: KindDef, spec: object) -> dict[str, Any]:
    name, namespace = _names(definition)
    return {"apiVersion": definition.api_version, "kind": definition.kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def maximal(schema: Mapping[str, Any]) -> Any:
    """A valid value with every field the schema spells out set (examples where it gives them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return SKIP
    kind = schema["type"]
    if kind == "object" and "additionalProperties" in schema:
        return schema["example"]  # a map: its documented example
    if kind == "object":
        # Of fields exclusive of each other (oneOf), the last group: the richest, by convention.
        groups = [set(alternative["required"]) for alternative in schema.get("oneOf", ())]
        left_out = set().union(*groups[:-1]) if groups else set()
        built = {key: maximal(sub) for key, sub in schema["properties"].items() if key not in left_out}
        return {key: value for key, value in built.items() if value is not SKIP}
    if kind == "array":
        entry = maximal(schema["items"])
        return SKIP if entry is SKIP else [entry]
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "boolean":
        return True  # not the default: a field dropped on the way back would show
    if kind in ("integer", "number"):
        return schema.get("maximum", schema.get("minimum", 1))
    return "x"


def nodes(schema: Mapping[str, Any], path: str = "spec") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{key}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[0]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


KIND_NAMES = sorted(KINDS)


def test_every_kind_has_a_schema() -> None:
    missing = [name for name, definition in KINDS.items() if definition.spec_schema is None]
    assert missing == [], f"kinds without a SPEC_SCHEMA (give their module one and register it): {missing}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_schema_is_structural(kind: str) -> None:
    """What the API server demands of a CRD's schema (and what `kubectl explain` needs)."""
    schema = KINDS[kind].spec_schema
    assert schema is not None
    for path, node in nodes(schema):
        assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), path
        assert isinstance(node.get("description"), str) and node["description"], path
        assert "$ref" not in node, path
        if node["type"] == "object":
            # Exactly one of: named fields, a map's value schema, or content kept as written.
            shapes = ["properties" in node, isinstance(node.get("additionalProperties"), dict),
                      bool(node.get("x-kubernetes-preserve-unknown-fields"))]  # fmt: skip
            assert sum(shapes) == 1, path
            assert set(node.get("required", ())) <= set(node.get("properties", {})), path
            for alternative in node.get("oneOf", ()):  # structural: value validation only, no types
                assert set(alternative) == {"required"} and set(alternative["required"]) <= set(node["properties"])
        if node["type"] == "array":
            assert "items" in node, path
        if "pattern" in node:
            re.compile(node["pattern"])
            assert node["pattern"].startswith("^") and node["pattern"].endswith("$"), path
        if "example" in node:
            found: list[Problem] = []
            validate(node["example"], node, path, found)
            assert found == [], f"{path}: its example is not valid: {found}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_maximal_document_passes_schema_and_parser_and_round_trips(kind: str) -> None:
    definition = KINDS[kind]
    assert definition.spec_schema is not None
    spec = maximal(definition.spec_schema)
    found: list[Problem] = []
    validate(spec, definition.spec_schema, "spec", found)
    assert found == []
    resource = parse_document(document(definition, spec), found)
    assert found == []
    assert resource is not None
    assert resource.spec_dict() == spec  # every field the schema has, the parser keeps


def _spy_known_keys(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, frozenset[str]]]:
    """Record every (path, allowed fields) a kind's parser checks, in every module of the package."""
    calls: list[tuple[str, frozenset[str]]] = []
    real = fields_module.known_keys

    def spy(node: dict[str, object], path: str, problems: list[Problem], allowed: Collection[str],
            ignored: Collection[str] = ()) -> None:  # fmt: skip
        calls.append((path, frozenset(allowed)))
        real(node, path, problems, allowed, ignored)

    for info in pkgutil.iter_modules(meshctl.resources.__path__):
        module = importlib.import_module(f"meshctl.resources.{info.name}")
        if module is not fields_module and getattr(module, "known_keys", None) is real:
            monkeypatch.setattr(module, "known_keys", spy)
    return calls


def _schema_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    node: Mapping[str, Any] | None = schema
    for part in re.findall(r"\.(\w+)|\[\d+\]", path[len("spec") :]):
        if node is None or node.get("x-kubernetes-preserve-unknown-fields"):
            return None
        node = node["items"] if not part else node.get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_field_the_parser_knows_is_in_the_schema(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    definition = KINDS[kind]
    assert definition.spec_schema is not None
    calls = _spy_known_keys(monkeypatch)
    definition.parse_spec(maximal(definition.spec_schema), "spec", [])
    checked = [(path, allowed) for path, allowed in calls if path.startswith("spec")]
    assert checked, "the parser checked no field names"
    for path, allowed in checked:
        node = _schema_at(definition.spec_schema, path)
        if node is None:
            continue  # below the levels the schema spells out (kept as written): the parser's alone
        assert set(node.get("properties", {})) == allowed, path


def _mistakes(spec: Any, schema: Mapping[str, Any], path: str = "spec") -> Iterator[tuple[str, Any]]:
    """(path of the mistake, the spec with that one mistake) for each field: a wrong type, an unknown
    field beside it, and each required field left out."""
    kind = schema.get("type")
    wrong: object = 7 if kind in ("string", "object", "array", "boolean") else "seven"
    yield path, wrong
    if kind == "object" and isinstance(spec, dict) and "properties" in schema:
        yield f"{path}.colour", {**spec, "colour": "blue"}
        for key in schema.get("required", ()):
            yield f"{path}.{key}", {k: v for k, v in spec.items() if k != key}
        for key, value in spec.items():
            for at, changed in _mistakes(value, schema["properties"][key], f"{path}.{key}"):
                yield at, {**spec, key: changed}
    if kind == "array" and isinstance(spec, list) and spec:
        for at, changed in _mistakes(spec[0], schema["items"], f"{path}[0]"):
            yield at, [changed, *spec[1:]]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_one_mistake_gives_one_message_at_its_field(kind: str) -> None:
    definition = KINDS[kind]
    assert definition.spec_schema is not None
    spec = maximal(definition.spec_schema)
    count = 0
    for at, changed in _mistakes(copy.deepcopy(spec), definition.spec_schema):
        found: list[Problem] = []
        assert parse_document(document(definition, changed), found) is None, at
        assert [p.path for p in found] == [at], (at, found)
        count += 1
    assert count > 10


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("TrafficSplit", {"service": "books", "backends": [{"service": "v1", "wieght": 5}]},
         ["spec.backends[0].wieght: unknown field (did you mean 'weight'?)", "spec.backends[0].weight: missing "
          "(its relative share: 0 gives it nothing, as in a blue-green switch)"]),
        ("TrafficSplit", {"service": "books", "backends": [{"service": "v1", "weight": 1}], "matches": []},
         ["spec.matches: not supported: every request of the service is split"]),
        ("FaultInjection", {"service": "books", "abort": {"percent": 150}},
         ["spec.abort.percent: expected a number from 0 to 100, got 150"]),
        ("FaultInjection", {"service": "books"}, ["spec: expected abort, delay or both"]),
        ("MeshIngress", {"rules": [{"paths": [{"pathPrefix": "/api?x", "service": "web", "port": "80"}]}]},
         ['spec.rules[0].paths[0].pathPrefix: expected a path starting with "/" (no query), got "/api?x"',
          'spec.rules[0].paths[0].port: expected an integer from 1 to 65535, got "80"']),
        ("TrafficTarget", {"destination": {"kind": "User", "name": "books"}, "rules": [], "sources": []},
         ['spec.destination.kind: expected ServiceAccount, got "User"',
          "spec.rules: expected at least one of the rules, got an empty list",
          "spec.sources: expected at least one of the sources, got an empty list"]),
        ("HTTPRouteGroup", {"matches": [{"name": "read", "pathRegex": "(["}]},
         ["spec.matches[0].pathRegex: not a valid regular expression: unterminated character set at position 1"]),
        ("ServiceProfile", {"routes": [{"name": "a", "condition": {"method": "GET"}, "timeout": "0s"}]},
         ['spec.routes[0].timeout: expected a duration such as "300ms", "1.5s" or "1m30s", got "0s"']),
        ("ServiceProfile", {"routes": [{"name": "a\n", "condition": {"method": "GET"}}]},
         ['spec.routes[0].name: expected at most 253 printable characters, got "a\\n"']),
    ],
)  # fmt: skip
def test_schema_and_parser_messages_together(kind: str, spec: object, message: list[str]) -> None:
    """The schema judges types, fields and bounds; the parser what only it knows; never both one mistake."""
    found: list[Problem] = []
    assert parse_document(document(KINDS[kind], spec), found) is None
    assert [str(p) for p in found] == message


def test_a_value_with_a_trailing_newline_is_refused_as_the_api_server_would() -> None:
    """Patterns run on RE2, as on the API server: "$" is the end of the text, not a final newline."""
    found: list[Problem] = []
    spec = {"service": "books\n", "backends": [{"service": "v1", "weight": 1}]}
    assert parse_document(document(KINDS["TrafficSplit"], spec), found) is None
    assert [p.path for p in found] == ["spec.service"]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_an_independent_validator_agrees_on_every_mistake(kind: str) -> None:
    """jsonschema (as kubectl's schema tools read openAPIV3 schemas) judges the maximal document and each
    typed mistake as ours does; unknown fields aside, which the API server prunes and `apply` refuses."""
    import jsonschema

    definition = KINDS[kind]
    assert definition.spec_schema is not None
    checker = jsonschema.Draft4Validator(definition.spec_schema)
    spec = maximal(definition.spec_schema)
    assert list(checker.iter_errors(spec)) == []
    for at, changed in _mistakes(copy.deepcopy(spec), definition.spec_schema):
        if at.endswith(".colour"):
            continue
        assert list(checker.iter_errors(changed)), f"jsonschema accepts the mistake at {at}"


def _docstring_examples() -> list[tuple[str, str]]:
    """The YAML examples in the resource modules' docstrings: indented blocks that name a kind."""
    found: list[tuple[str, str]] = []
    for info in pkgutil.iter_modules(meshctl.resources.__path__):
        doc = importlib.import_module(f"meshctl.resources.{info.name}").__doc__ or ""
        for block in re.findall(r"(?:^    .*\n)+", doc, re.M):
            if "\nkind: " in "\n" + textwrap.dedent(block):
                found.append((info.name, textwrap.dedent(block)))
    return found


DOC_EXAMPLES = _docstring_examples()


def test_every_kind_documents_an_example() -> None:
    documented = {resource.kind for _, text in DOC_EXAMPLES for resource in parse_text(text)}
    assert documented == set(KINDS)


@pytest.mark.parametrize(("module", "text"), DOC_EXAMPLES, ids=[module for module, _ in DOC_EXAMPLES])
def test_documented_examples_apply(module: str, text: str) -> None:
    for resource in parse_text(text, f"meshctl/resources/{module}.py"):
        found: list[Problem] = []
        assert resource.spec is not None
        validate(resource.to_document()["spec"], KINDS[resource.kind].spec_schema or {}, "spec", found)
        assert found == []
