"""webapp: the front end. Renders HTML pages from books and authors, reached through its sidecar."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import parse_qs

from meshctl.demo.settings import ServiceSettings
from meshctl.demo.web import Downstream, HTTPFailure, Request, Response, Router, serve


def _page(title: str, body: str, pod: str) -> Response:
    html = (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{escape(title)} · booksapp</title></head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n<p><small>served by {escape(pod)}</small></p>\n</body></html>\n"
    )
    return Response(200, html.encode(), "text/html; charset=utf-8")


def _redirect(location: str) -> Response:
    return Response(303, b"", headers={"Location": location})


def _form(request: Request) -> dict[str, str]:
    """A browser form (urlencoded) or a JSON object, as the same flat mapping."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = request.json()
        except ValueError:
            raise HTTPFailure(400, "invalid JSON") from None
        if not isinstance(value, dict):
            raise HTTPFailure(400, "expected a JSON object")
        return {str(k): str(v) for k, v in value.items()}
    fields = parse_qs(request.body.decode("utf-8", "replace"), max_num_fields=20)
    return {k: v[0] for k, v in fields.items()}


def _int_field(form: dict[str, str], name: str, default: int | None = None) -> int:
    raw = form.get(name)
    if raw is None and default is not None:
        return default
    try:
        return int(raw or "")
    except ValueError:
        raise HTTPFailure(400, f"{name}: expected an integer") from None


def _objects(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _author_name(author: object) -> str:
    if not isinstance(author, dict):
        return "unknown author"
    return f"{author.get('first_name', '')} {author.get('last_name', '')}".strip()


def build_router(settings: ServiceSettings, books: Downstream, authors: Downstream) -> Router:
    router = Router()

    def index(request: Request) -> Response:
        shelf = _objects(books.get_json("/books"))
        names = {a.get("id"): _author_name(a) for a in _objects(authors.get_json("/authors"))}
        items = "\n".join(
            f"<li><a href='/books/{b.get('id')}'>{escape(str(b.get('title')))}</a> by "
            f"<a href='/authors/{b.get('author_id')}'>{escape(names.get(b.get('author_id'), '?'))}</a></li>"
            for b in shelf
        )
        return _page("Books", f"<ul>\n{items}\n</ul>", settings.pod)

    def book(request: Request) -> Response:
        found = books.get_json(f"/books/{request.params[0]}")
        if not isinstance(found, dict):
            raise HTTPFailure(502, "books answered something else than a book")
        rating = found.get("rating")
        stars = (
            f"{rating.get('average')} stars from {rating.get('votes')} votes"
            if isinstance(rating, dict)
            else "no rating available"
        )
        body = (
            f"<p>by <a href='/authors/{found.get('author_id')}'>"
            f"{escape(_author_name(found.get('author')))}</a>,"
            f" {found.get('pages')} pages</p>\n<p>{escape(stars)}</p>"
        )
        return _page(str(found.get("title")), body, settings.pod)

    def author(request: Request) -> Response:
        found = authors.get_json(f"/authors/{request.params[0]}")
        author_id = int(request.params[0])
        titles = [b for b in _objects(books.get_json("/books")) if b.get("author_id") == author_id]
        items = "\n".join(f"<li><a href='/books/{b.get('id')}'>{escape(str(b.get('title')))}</a></li>" for b in titles)
        return _page(_author_name(found), f"<ul>\n{items}\n</ul>", settings.pod)

    def create(request: Request) -> Response:
        form = _form(request)
        value = {
            "title": form.get("title", ""),
            "author_id": _int_field(form, "author_id"),
            "pages": _int_field(form, "pages", 0),
        }
        status, created = books.post_json("/books", value)
        if status != 201 or not isinstance(created, dict):
            raise HTTPFailure(status if 400 <= status < 500 else 502, f"books refused the book: {created}")
        return _redirect(f"/books/{created.get('id')}")

    def rate(request: Request) -> Response:
        stars = _int_field(_form(request), "stars")
        status, answer = books.post_json(f"/books/{request.params[0]}/ratings", {"stars": stars})
        if status != 200:
            raise HTTPFailure(status if 400 <= status < 500 else 502, f"rating refused: {json.dumps(answer)}")
        return _redirect(f"/books/{request.params[0]}")

    router.add("GET", "/", index)
    router.add("GET", r"/books/(\d+)", book)
    router.add("GET", r"/authors/(\d+)", author)
    router.add("POST", "/books", create)
    router.add("POST", r"/books/(\d+)/rate", rate)
    return router


def main(settings: ServiceSettings) -> int:
    if settings.outbound is None:
        raise SystemExit("webapp needs --outbound: it reaches books and authors through its sidecar")
    books = Downstream(settings.outbound, settings.authority("books"))
    authors = Downstream(settings.outbound, settings.authority("authors"))
    return serve(build_router(settings, books, authors), settings.listen, settings.pod, access_log=settings.access_log)
