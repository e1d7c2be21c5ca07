"""HAR 1.2 export of tapped exchanges (http://www.softwareishard.com/blog/har-12-spec/).

Mesh facts HAR has no field for (instance, direction, identities, TLS, route, gRPC status, the proxy's
failure reason) go in `_meshctl`, as the spec allows custom fields starting with an underscore. Sensitive
headers arrive redacted from the proxy and stay so; cookies are therefore not listed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from meshctl import __version__
from meshctl.errors import UsageError
from meshctl.tapping.codec import iso_time
from meshctl.tapping.events import BodyChunk, Headers
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.render import grpc_name

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
            304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip


def _headers(headers: Headers) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _header(headers: Headers, name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


def _text(chunk: BodyChunk) -> dict[str, str]:
    try:
        return {"text": chunk.data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(chunk.data).decode("ascii"), "encoding": "base64"}


def _ms(micros: int) -> float:
    return round(micros / 1000.0, 3)


def entry(exchange: Exchange) -> dict[str, Any] | None:
    """The HAR entry of one ended exchange (None while it has no request or end)."""
    req, rsp, end = exchange.request, exchange.response, exchange.end
    if req is None or end is None:
        return None
    content_type = _header(req.headers, "content-type") or ""
    # gRPC needs HTTP/2; for other requests the proxy does not report the version, so none is claimed.
    version = "HTTP/2" if content_type.startswith("application/grpc") else ""
    query = req.path.partition("?")[2]
    request: dict[str, Any] = {
        "method": req.method,
        "url": f"http://{req.authority}{req.path}",
        "httpVersion": version,
        "cookies": [],
        "headers": _headers(req.headers),
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)],
        "headersSize": -1,
        "bodySize": end.request_bytes,
    }
    if exchange.request_body is not None:
        request["postData"] = {"mimeType": content_type, **_text(exchange.request_body)}
    rsp_headers = rsp.headers if rsp is not None else ()
    content: dict[str, Any] = {"size": end.response_bytes, "mimeType": _header(rsp_headers, "content-type") or ""}
    if exchange.response_body is not None:
        content.update(_text(exchange.response_body))
    status = rsp.http_status if rsp is not None else 0
    wait = rsp.since_request_init_us if rsp is not None else end.since_request_init_us
    return {
        "startedDateTime": iso_time(req.timestamp_us),
        "time": _ms(end.since_request_init_us),
        "request": request,
        "response": {
            "status": status,
            "statusText": _REASONS.get(status, ""),
            "httpVersion": version,
            "cookies": [],
            "headers": _headers(rsp_headers),
            "content": content,
            "redirectURL": _header(rsp_headers, "location") or "",
            "headersSize": -1,
            "bodySize": end.response_bytes,
        },
        "cache": {},
        "timings": {"send": 0, "wait": _ms(wait), "receive": _ms(end.since_response_init_us)},
        "serverIPAddress": req.destination.address.rpartition(":")[0].strip("[]"),
        "_meshctl": {
            "instance": exchange.instance,
            "id": exchange.id,
            "direction": req.direction,
            "source": req.source.address,
            "source_identity": req.source.identity,
            "destination_identity": req.destination.identity,
            "tls": req.tls,
            "route": req.route or "[DEFAULT]",
            "grpc_status": None if end.grpc_status is None else grpc_name(end.grpc_status),
            "failure": end.failure,
            "trailers": _headers(end.trailers),
        },
    }


def har_document(exchanges: list[Exchange]) -> dict[str, Any]:
    entries = [e for e in (entry(x) for x in exchanges) if e is not None]
    return {"log": {"version": "1.2", "creator": {"name": "meshctl", "version": __version__}, "entries": entries}}


def write_har(path: Path, exchanges: list[Exchange]) -> int:
    """Write the HAR file; returns how many entries it holds."""
    document = har_document(exchanges)
    try:
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", hint="pick a writable path") from None
    return len(document["log"]["entries"])
