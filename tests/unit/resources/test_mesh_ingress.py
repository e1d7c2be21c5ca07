"""MeshIngress validation: good documents round-trip; a mistake names its field and what was expected."""

from __future__ import annotations

import pytest
import yaml

from meshctl.resources import ResourceError, parse_text
from meshctl.resources.mesh_ingress import IngressPath, IngressRule, MeshIngressSpec

HEAD = "apiVersion: meshctl.io/v1alpha1\nkind: MeshIngress\nmetadata: {name: shop, namespace: booksapp}\n"
GOOD = HEAD + """\
spec:
  rules:
  - host: shop.example.com
    paths:
    - {pathPrefix: /, service: webapp}
    - {pathPrefix: /api/, service: api, namespace: backend, port: 8080}
  - paths:
    - {pathPrefix: /health, service: webapp, port: 7000}
"""


def test_a_good_document_parses_and_round_trips() -> None:
    (resource,) = parse_text(GOOD, "shop.yaml")
    assert resource.ref == "meshingress/shop" and resource.namespace == "booksapp"
    assert resource.spec == MeshIngressSpec((
        IngressRule("shop.example.com", (IngressPath("/", "webapp"), IngressPath("/api/", "api", "backend", 8080))),
        IngressRule(None, (IngressPath("/health", "webapp", None, 7000),)),
    ))  # fmt: skip
    (again,) = parse_text(yaml.safe_dump(resource.to_document()), "again.yaml")
    assert again.spec == resource.spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("spec: {rules: []}", "spec.rules: expected a non-empty list of rules, got an empty list"),
        ("spec: {rules: [{paths: []}]}", "spec.rules[0].paths: expected a non-empty list of paths, got an empty list"),
        ("spec: {rules: [{host: 'shop.example.com:80', paths: [{pathPrefix: /, service: w}]}]}",
         'spec.rules[0].host: expected a DNS name such as "books.example.com" or "*.example.com" (no port), '
         'got "shop.example.com:80"'),
        ("spec: {rules: [{paths: [{pathPrefix: api, service: w}]}]}",
         'spec.rules[0].paths[0].pathPrefix: expected a path starting with "/" (no query), got "api"'),
        ("spec: {rules: [{paths: [{pathPrefix: /, service: Web_App}]}]}",
         'spec.rules[0].paths[0].service: expected a service name (a DNS label: a-z, 0-9, -), got "Web_App"'),
        ("spec: {rules: [{paths: [{pathPrefix: /, service: w, port: 0}]}]}",
         "spec.rules[0].paths[0].port: expected an integer from 1 to 65535, got 0"),
        ("spec: {rules: [{paths: [{pathPrefix: /, service: w, backend: x}]}]}",
         "spec.rules[0].paths[0].backend: unknown field (allowed: namespace, pathPrefix, port, service)"),
        ("spec: {rules: [{paths: [{pathPrefix: /a/, service: w}]}, {paths: [{pathPrefix: /a, service: v}]}]}",
         "spec.rules[1].paths[0].pathPrefix: host and prefix already exposed at spec.rules[0].paths[0]"),
    ],
)
def test_a_mistake_names_its_field(spec: str, message: str) -> None:
    with pytest.raises(ResourceError) as raised:
        parse_text(HEAD + spec + "\n", "shop.yaml")
    assert str(raised.value) == f"shop.yaml: document 1: {message}"


def test_the_namespace_is_required() -> None:
    document = GOOD.replace("{name: shop, namespace: booksapp}", "{name: shop}")
    with pytest.raises(ResourceError, match="metadata.namespace: missing"):
        parse_text(document, "shop.yaml")
