"""A ServiceProfile from observed requests: paths generalised into templates, literal routes first."""

from __future__ import annotations

import pytest
import yaml

from meshctl.resources import parse_text
from meshctl.tapping.events import RequestInit
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.profile import profile_from_tap, template
from tests.unit.tapping.scenario import BOOKS, WEB_OUT


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/books", "/books"),
        ("/books/17?x=1", "/books/{id}"),
        ("/authors/3/books/9", "/authors/{id}/books/{id2}"),
        ("/orders/0b7c2a52-3f1e-4b7a-9a49-6f3c1d2e8a10", "/orders/{id}"),
        ("/blobs/deadbeefdeadbeef01", "/blobs/{id}"),
        ("/books/new", "/books/new"),
        ("", "/"),
    ],
)
def test_paths_become_templates(path: str, expected: str) -> None:
    assert template(path) == expected


def exchange(n: int, method: str, path: str) -> Exchange:
    request = RequestInit("books-0", n, 0, "inbound", WEB_OUT, BOOKS, True, method, "books:7002", path, "")
    return Exchange("books-0", n, n, request=request)


def test_profile_routes_are_valid_and_ordered() -> None:
    seen = [exchange(1, "GET", "/books/1"), exchange(2, "GET", "/books/2"), exchange(3, "GET", "/books/new"),
            exchange(4, "POST", "/books"), exchange(5, "GET", "/books")]  # fmt: skip
    document = profile_from_tap(seen, "books", "booksapp")
    names = [r["name"] for r in document["spec"]["routes"]]
    assert names == ["GET /books", "POST /books", "GET /books/new", "GET /books/{id}"]
    (resource,) = parse_text(yaml.safe_dump(document, sort_keys=False), "profile of books")  # as `apply` checks
    assert resource.to_document()["spec"]["routes"][3]["condition"] == {"method": "GET", "pathRegex": "/books/[^/]*"}
