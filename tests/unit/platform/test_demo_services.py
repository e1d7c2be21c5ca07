"""The demo services' routes, driven without sockets (downstreams replaced by fakes)."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from meshctl.demo import authors, books, catalogue, traffic, webapp
from meshctl.demo.settings import ServiceSettings
from meshctl.demo.web import HTTPFailure, Request, Response, Router


def settings(service: str, failure_rate: float = 0.0, latency_ms: float = 0.0) -> ServiceSettings:
    return ServiceSettings(
        service, "127.0.0.1:1", "127.0.0.1:2", f"{service}-0", "booksapp", failure_rate, latency_ms, False
    )


def call(router: Router, method: str, path: str, body: object = None, form: str | None = None) -> Response:
    if form is not None:
        raw, headers = form.encode(), {"content-type": "application/x-www-form-urlencoded"}
    else:
        raw, headers = (
            (json.dumps(body).encode() if body is not None else b""),
            {"content-type": "application/json"},
        )
    return router.dispatch(Request(method, path, "", headers, raw))


class FakeDownstream:
    """Answers like a service behind the sidecar, from a table of (method, path) -> (status, value)."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, bytes]:
        self.calls.append((method, path))
        status, value = self.answers.get((method, path), (404, "not found"))
        return status, json.dumps(value).encode()

    def get_json(self, path: str) -> object:
        status, raw = self.request("GET", path)
        if status == 404:
            raise HTTPFailure(404, "not found")
        if status >= 400:
            raise HTTPFailure(502, "failed")
        return json.loads(raw)

    def post_json(self, path: str, value: object) -> tuple[int, object]:
        status, raw = self.request("POST", path)
        if status >= 500:
            raise HTTPFailure(status, "failed")
        return status, json.loads(raw)


class FakeRatings:
    def get(self, book_id: int) -> dict[str, object] | None:
        return {"book_id": book_id, "average": 4.0, "votes": 3}

    def rate(self, book_id: int, stars: int) -> dict[str, object]:
        return {"book_id": book_id, "average": float(stars), "votes": 1}


def test_authors_lists_and_finds_authors() -> None:
    router = authors.build_router(settings("authors"))
    assert call(router, "GET", "/authors").status == 200
    found = call(router, "GET", "/authors/3")
    assert json.loads(found.body)["last_name"] == "Shelley"
    assert call(router, "GET", "/authors/999").status == 404
    assert call(router, "DELETE", "/authors/3").status == 405
    assert call(router, "GET", "/nothing").status == 404


def test_authors_fails_at_the_configured_rate() -> None:
    router = authors.build_router(settings("authors", failure_rate=1.0), random.Random(1))
    assert call(router, "GET", "/authors/3").status == 500
    assert call(router, "GET", "/authors").status == 200  # only the slow route


def test_books_reads_authors_and_ratings_through_downstreams() -> None:
    downstream = FakeDownstream({("GET", "/authors/1"): (200, {"id": 1, "first_name": "Jane", "last_name": "Austen"})})
    router = books.build_router(settings("books"), downstream, FakeRatings())  # type: ignore[arg-type]
    answer = json.loads(call(router, "GET", "/books/1").body)
    assert answer["title"] == "Pride and Prejudice"
    assert answer["author"]["last_name"] == "Austen" and answer["rating"]["votes"] == 3
    assert downstream.calls == [("GET", "/authors/1")]
    assert call(router, "GET", "/books/9999").status == 404


def test_books_post_fails_at_the_configured_rate_and_validates() -> None:
    downstream = FakeDownstream({("GET", "/authors/1"): (200, {"id": 1})})
    failing = books.build_router(settings("books", failure_rate=1.0), downstream, FakeRatings())  # type: ignore[arg-type]
    assert call(failing, "POST", "/books", {"title": "New", "author_id": 1, "pages": 10}).status == 500
    working = books.build_router(settings("books"), downstream, FakeRatings())  # type: ignore[arg-type]
    created = call(working, "POST", "/books", {"title": "New", "author_id": 1, "pages": 10})
    assert created.status == 201
    book_id = json.loads(created.body)["id"]
    assert call(working, "GET", f"/books/{book_id}").status == 200
    assert call(working, "POST", "/books", {"title": "", "author_id": 1}).status == 400
    assert call(working, "POST", "/books", {"title": "x", "author_id": 77}).status == 400  # no such author
    assert call(working, "POST", "/books/1/ratings", {"stars": 9}).status == 400
    assert call(working, "POST", "/books/1/ratings", {"stars": 5}).status == 200


def test_created_books_are_bounded() -> None:
    shelf = books.Shelf()
    for i in range(books.MAX_CREATED + 10):
        shelf.add(f"b{i}", 1, 1)
    assert len(shelf.all()) == len(catalogue.BOOKS) + books.MAX_CREATED
    assert shelf.get(books.FIRST_CREATED_ID) is None


def test_webapp_renders_pages_and_propagates_failures() -> None:
    book = {
        "id": 1,
        "title": "Emma",
        "author_id": 1,
        "pages": 3,
        "author": {"first_name": "Jane", "last_name": "Austen"},
    }
    books_down = FakeDownstream(
        {
            ("GET", "/books"): (200, [book]),
            ("GET", "/books/1"): (200, {**book, "rating": None}),
            ("POST", "/books"): (500, "simulated failure"),
        }
    )
    authors_down = FakeDownstream(
        {("GET", "/authors"): (200, [{"id": 1, "first_name": "Jane", "last_name": "Austen"}])}
    )
    router = webapp.build_router(settings("webapp"), books_down, authors_down)  # type: ignore[arg-type]
    index = call(router, "GET", "/")
    assert index.status == 200 and b"Emma" in index.body and b"Jane Austen" in index.body
    assert b"no rating available" in call(router, "GET", "/books/1").body
    assert call(router, "POST", "/books", form="title=X&author_id=1&pages=3").status == 500
    assert call(router, "POST", "/books", form="title=X&author_id=abc").status == 400


def test_traffic_mix_covers_every_route_and_is_repeatable() -> None:
    rng = random.Random(7)
    calls = [traffic.next_call(rng) for _ in range(2000)]
    kinds = Counter((c.method, c.path.split("/")[1] if c.path != "/" else "") for c in calls)
    assert {("GET", ""), ("GET", "books"), ("GET", "authors"), ("POST", "books")} <= set(kinds)
    assert [traffic.next_call(random.Random(7)) for _ in range(1)] == calls[:1]
    posts = [c for c in calls if c.method == "POST" and c.path == "/books"]
    assert all(b"author_id=" in c.body for c in posts)


def test_tally_reports_and_resets() -> None:
    tally = traffic.Tally()
    for status in (200, 200, 500, 404, None):
        tally.record(status, 10.0)
    line = tally.report(10.0)
    assert "sent 5" in line and "ok 2" in line and "5xx 1" in line and "4xx 1" in line and "no answer 1" in line
    assert "sent 0" in tally.report(10.0)
