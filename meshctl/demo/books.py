"""books: the middle of the call chain. Reads authors over HTTP and ratings over gRPC, through its sidecar.

`POST /books` is the failing route: it answers 500 for --failure-rate of the requests.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from meshctl.demo.catalogue import BOOKS, Book
from meshctl.demo.settings import ServiceSettings
from meshctl.demo.web import (
    Downstream,
    HTTPFailure,
    Request,
    Response,
    Router,
    json_response,
    serve,
    text_response,
)

if TYPE_CHECKING:
    from meshctl.demo.ratings_client import RatingsClient

MAX_CREATED = 1000  # books added by POST are kept in memory; the oldest go first
FIRST_CREATED_ID = 1001


class Shelf:
    """The books of this replica: the catalogue plus a bounded number added by POST /books."""

    def __init__(self) -> None:
        self._books: dict[int, Book] = {b.id: b for b in BOOKS}
        self._created: list[int] = []
        self._next_id = FIRST_CREATED_ID
        self._lock = threading.Lock()

    def all(self) -> list[Book]:
        with self._lock:
            return list(self._books.values())

    def get(self, book_id: int) -> Book | None:
        with self._lock:
            return self._books.get(book_id)

    def add(self, title: str, author_id: int, pages: int) -> Book:
        with self._lock:
            book = Book(self._next_id, title, author_id, pages)
            self._next_id += 1
            self._books[book.id] = book
            self._created.append(book.id)
            if len(self._created) > MAX_CREATED:
                self._books.pop(self._created.pop(0), None)
            return book


def _book_fields(value: object) -> tuple[str, int, int]:
    if not isinstance(value, dict):
        raise HTTPFailure(400, "expected a JSON object with title, author_id and pages")
    title, author_id, pages = value.get("title"), value.get("author_id"), value.get("pages", 0)
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise HTTPFailure(400, "title: expected a non-empty string of at most 200 characters")
    if not isinstance(author_id, int) or not isinstance(pages, int) or pages < 0:
        raise HTTPFailure(400, "author_id and pages: expected non-negative integers")
    return title.strip(), author_id, pages


def build_router(
    settings: ServiceSettings,
    authors: Downstream,
    ratings: RatingsClient,
    rng: random.Random | None = None,
) -> Router:
    shelf = Shelf()
    chance = rng or random.Random()
    router = Router()

    def list_books(request: Request) -> Response:
        return json_response(200, [b.to_json() for b in shelf.all()])

    def get_book(request: Request) -> Response:
        book = shelf.get(int(request.params[0]))
        if book is None:
            return text_response(404, "no such book")
        author = authors.get_json(f"/authors/{book.author_id}")
        return json_response(
            200,
            {**book.to_json(), "author": author, "rating": ratings.get(book.id), "served_by": settings.pod},
        )

    def create_book(request: Request) -> Response:
        try:
            title, author_id, pages = _book_fields(request.json())
        except ValueError:
            raise HTTPFailure(400, "expected a JSON body") from None
        status, _ = authors.request("GET", f"/authors/{author_id}")
        if status == 404:
            return text_response(400, f"no author with id {author_id}")
        if status >= 400:
            raise HTTPFailure(502, f"authors answered {status}")
        if chance.random() < settings.failure_rate:
            return text_response(500, f"simulated failure (failure rate {settings.failure_rate})")
        book = shelf.add(title, author_id, pages)
        return json_response(201, book.to_json())

    def rate_book(request: Request) -> Response:
        book_id = int(request.params[0])
        if shelf.get(book_id) is None:
            return text_response(404, "no such book")
        try:
            body = request.json()
        except ValueError:
            body = None
        stars = body.get("stars") if isinstance(body, dict) else None
        if not isinstance(stars, int) or not 1 <= stars <= 5:
            return text_response(400, "stars: expected an integer from 1 to 5")
        return json_response(200, ratings.rate(book_id, stars))

    router.add("GET", "/books", list_books)
    router.add("POST", "/books", create_book)
    router.add("GET", r"/books/(\d+)", get_book)
    router.add("POST", r"/books/(\d+)/ratings", rate_book)
    return router


def main(settings: ServiceSettings) -> int:
    from meshctl.demo.ratings_client import RatingsClient

    if settings.outbound is None:
        raise SystemExit("books needs --outbound: it reaches authors and ratings through its sidecar")
    authors = Downstream(settings.outbound, settings.authority("authors"))
    ratings = RatingsClient(settings.outbound, settings.authority("ratings"))
    try:
        return serve(
            build_router(settings, authors, ratings),
            settings.listen,
            settings.pod,
            access_log=settings.access_log,
        )
    finally:
        ratings.close()
