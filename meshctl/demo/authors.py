"""authors: the leaf HTTP service. `GET /authors/{id}` is the slow route (latency set by --latency-ms)."""

from __future__ import annotations

import random
import time

from meshctl.demo.catalogue import AUTHORS
from meshctl.demo.settings import ServiceSettings
from meshctl.demo.web import Request, Response, Router, json_response, serve, text_response


def build_router(settings: ServiceSettings, rng: random.Random | None = None) -> Router:
    by_id = {a.id: a for a in AUTHORS}
    chance = rng or random.Random()
    router = Router()

    def list_authors(request: Request) -> Response:
        return json_response(200, [a.to_json() for a in AUTHORS])

    def get_author(request: Request) -> Response:
        if settings.latency_ms > 0:
            # Uniform around the configured mean so percentiles differ, as a real slow query would.
            time.sleep(settings.latency_ms * (0.5 + chance.random()) / 1000.0)
        if settings.failure_rate > 0 and chance.random() < settings.failure_rate:
            return text_response(500, f"simulated failure (failure rate {settings.failure_rate})")
        author = by_id.get(int(request.params[0]))
        if author is None:
            return text_response(404, "no such author")
        return json_response(200, author.to_json())

    router.add("GET", "/authors", list_authors)
    router.add("GET", r"/authors/(\d+)", get_author)
    router.add("HEAD", r"/authors/(\d+)", get_author)
    return router


def main(settings: ServiceSettings) -> int:
    return serve(build_router(settings), settings.listen, settings.pod, access_log=settings.access_log)
