"""A ServiceProfile from observed requests (`meshctl profile SERVICE --tap TARGET`).

Paths are generalised segment by segment: numbers, UUIDs and long hex strings become `{id}` (then
`{id2}` ...), so `/books/17` and `/books/42` make one route `GET /books/{id}`. Routes come out in the
shape the OpenAPI variant writes, literal paths before templated ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from meshctl.identity import service_fqdn
from meshctl.observe.openapi import path_regex
from meshctl.resources import API_VERSION
from meshctl.tapping.exchange import Exchange

_ID = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$"
)


def template(path: str) -> str:
    """/books/17?x=1 → /books/{id}."""
    segments = path.split("?", 1)[0].split("#", 1)[0].split("/")
    count = 0
    out = []
    for segment in segments:
        if _ID.match(segment):
            count += 1
            out.append("{id}" if count == 1 else f"{{id{count}}}")
        else:
            out.append(segment)
    return "/".join(out) or "/"


def profile_from_tap(exchanges: Iterable[Exchange], service: str, namespace: str) -> dict[str, Any]:
    seen: dict[tuple[str, str], int] = {}
    for exchange in exchanges:
        if exchange.request is None:
            continue
        key = (exchange.request.method, template(exchange.request.path))
        seen[key] = seen.get(key, 0) + 1
    ordered = sorted(seen, key=lambda k: (k[1].count("{"), k[1], k[0]))
    routes = [{"name": f"{method} {path}", "condition": {"method": method, "pathRegex": path_regex(path)}}
              for method, path in ordered]  # fmt: skip
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceProfile",
        "metadata": {"name": service_fqdn(service, namespace), "namespace": namespace},
        "spec": {"routes": routes},
    }
