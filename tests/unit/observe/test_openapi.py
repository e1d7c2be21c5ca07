"""OpenAPI / Swagger -> ServiceProfile: names, regexes the proxy matches, order, policy extensions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshctl.cli.app import main
from meshctl.errors import UsageError
from meshctl.observe.openapi import base_path, path_regex, profile_from_openapi
from meshctl.proxy.policy.route import compile_profile
from meshctl.resources import parse_text

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "books", "version": "1"},
    "servers": [{"url": "http://books.example/api/"}],
    "paths": {
        "/books/{id}": {
            "get": {"x-meshctl-timeout": "300ms", "x-meshctl-retryable": True},
            "delete": {},
            "parameters": [{"name": "id", "in": "path"}],
        },
        "/books": {"get": {}, "post": {"x-linkerd-retryable": False}},
        "/books/new": {"get": {}},
        "/books/{id}/ratings.json": {"post": {}},
    },
}


def test_path_regex() -> None:
    assert path_regex("/books/{id}") == "/books/[^/]*"
    assert path_regex("/a-b/{x}/c.json") == "/a\\-b/[^/]*/c\\.json"


def test_base_path() -> None:
    assert base_path({"swagger": "2.0", "basePath": "/v1/"}) == "/v1"
    assert base_path(SPEC) == "/api"
    assert base_path({"openapi": "3.0.0", "servers": [{"url": "{scheme}://x/y"}]}) == ""
    assert base_path({"openapi": "3.0.0"}) == ""


def test_profile_routes_match_like_the_spec() -> None:
    document = profile_from_openapi(SPEC, "books", "booksapp", "books.yaml")
    assert document["metadata"] == {"name": "books.booksapp.svc.cluster.local", "namespace": "booksapp"}
    routes = document["spec"]["routes"]
    names = [r["name"] for r in routes]
    # literal paths first, so /books/new is not taken by /books/{id}
    assert names == [
        "GET /api/books", "POST /api/books", "GET /api/books/new",
        "GET /api/books/{id}", "DELETE /api/books/{id}", "POST /api/books/{id}/ratings.json",
    ]  # fmt: skip
    assert routes[3]["timeout"] == "300ms" and routes[3]["isRetryable"] is True
    assert "isRetryable" not in routes[1]
    (resource,) = parse_text(yaml.safe_dump(document), "generated")  # what `meshctl apply` accepts
    profile = compile_profile(resource.spec_dict())
    assert profile.route_for("GET", "/api/books/12") == "GET /api/books/{id}"
    assert profile.route_for("GET", "/api/books/new") == "GET /api/books/new"
    assert profile.route_for("POST", "/api/books/7/ratings.json") == "POST /api/books/{id}/ratings.json"
    assert profile.route_for("POST", "/api/books/7/ratingsXjson") == "[DEFAULT]"
    assert profile.route_for("GET", "/api/books/1/2") == "[DEFAULT]"
    assert profile.route_for("PUT", "/api/books") == "[DEFAULT]"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "is not an OpenAPI document"),
        ({"info": {}}, "is not an OpenAPI document"),
        ({"swagger": "2.0", "paths": {}}, "has no paths"),
        ({"swagger": "2.0", "paths": {"/x": {"parameters": []}}}, "defines no operation"),
    ],
)
def test_refuses_what_is_not_a_spec(spec: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        profile_from_openapi(spec, "books", "booksapp", "spec.json")
    assert message in caught.value.message


def test_profile_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "books.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    assert main(["profile", "books", "--open-api", str(spec), "-n", "booksapp"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["kind"] == "ServiceProfile" and len(document["spec"]["routes"]) == 6
    assert main(["-o", "json", "profile", "books", "--open-api", str(spec), "-n", "booksapp"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["name"] == "books.booksapp.svc.cluster.local"
    assert main(["profile", "books", "--open-api", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
