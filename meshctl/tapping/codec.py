"""Events as JSON objects: the `-o json` lines and the capture format are the same, so a capture
replays through the same filters and renderers and prints what the live run printed.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from meshctl.tapping.events import (
    BodyChunk,
    Dropped,
    Endpoint,
    Headers,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    TapEvent,
)
from meshctl.tapping.exchange import trace_id


def iso_time(timestamp_us: int) -> str:
    return datetime.fromtimestamp(timestamp_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _endpoint(e: Endpoint) -> dict[str, str]:
    return {
        "address": e.address,
        "identity": e.identity,
        "workload": e.workload,
        "namespace": e.namespace,
        "pod": e.pod,
    }


def _headers(headers: Headers) -> list[list[str]]:
    return [[name, value] for name, value in headers]


def to_json(event: TapEvent) -> dict[str, Any]:
    """The JSON object of one event ("type": req | rsp | end | body | dropped)."""
    if isinstance(event, RequestInit):
        out: dict[str, Any] = {
            "type": "req", "instance": event.instance, "id": event.id, "time": iso_time(event.timestamp_us),
            "timestamp_us": event.timestamp_us, "direction": event.direction, "source": _endpoint(event.source),
            "destination": _endpoint(event.destination), "tls": event.tls, "method": event.method,
            "authority": event.authority, "path": event.path, "route": event.route, "headers": _headers(event.headers),
        }  # fmt: skip
        if (trace := trace_id(event.headers)) is not None:
            out["trace_id"] = trace
        return out
    if isinstance(event, ResponseInit):
        return {
            "type": "rsp", "instance": event.instance, "id": event.id, "time": iso_time(event.timestamp_us),
            "timestamp_us": event.timestamp_us, "since_request_init_us": event.since_request_init_us,
            "status": event.http_status, "headers": _headers(event.headers),
        }  # fmt: skip
    if isinstance(event, ResponseEnd):
        return {
            "type": "end", "instance": event.instance, "id": event.id, "time": iso_time(event.timestamp_us),
            "timestamp_us": event.timestamp_us, "since_request_init_us": event.since_request_init_us,
            "since_response_init_us": event.since_response_init_us, "request_bytes": event.request_bytes,
            "response_bytes": event.response_bytes, "grpc_status": event.grpc_status, "failure": event.failure,
            "trailers": _headers(event.trailers), "response_started": event.response_started,
        }  # fmt: skip
    if isinstance(event, BodyChunk):
        try:
            data, encoding = event.data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            data, encoding = base64.b64encode(event.data).decode("ascii"), "base64"
        return {
            "type": "body", "instance": event.instance, "id": event.id, "request": event.request,
            "data": data, "encoding": encoding, "truncated": event.truncated,
        }  # fmt: skip
    return {
        "type": "dropped", "instance": event.instance, "queue_full": event.queue_full,
        "rate_limited": event.rate_limited,
    }  # fmt: skip


class CodecError(ValueError):
    """An object that is not a tap event this version wrote."""


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise CodecError(f"{key}: expected a string")
    return value


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CodecError(f"{key}: expected an integer")
    return value


def _read_headers(raw: dict[str, Any], key: str) -> Headers:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in value
    ):
        raise CodecError(f"{key}: expected a list of [name, value] pairs")
    return tuple((h[0], h[1]) for h in value)


def _read_endpoint(raw: dict[str, Any], key: str) -> Endpoint:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise CodecError(f"{key}: expected an object")
    return Endpoint(*(_str(value, k) for k in ("address", "identity", "workload", "namespace", "pod")))


def from_json(raw: object) -> TapEvent:
    """The event a `to_json` object describes; CodecError naming the field that is wrong."""
    if not isinstance(raw, dict):
        raise CodecError("expected a JSON object")
    kind, instance = raw.get("type"), _str(raw, "instance")
    if kind == "req":
        return RequestInit(
            instance, _int(raw, "id"), _int(raw, "timestamp_us"), _str(raw, "direction"),
            _read_endpoint(raw, "source"), _read_endpoint(raw, "destination"), bool(raw.get("tls")),
            _str(raw, "method"), _str(raw, "authority"), _str(raw, "path"), _str(raw, "route"),
            _read_headers(raw, "headers"),
        )  # fmt: skip
    if kind == "rsp":
        return ResponseInit(
            instance, _int(raw, "id"), _int(raw, "timestamp_us"), _int(raw, "since_request_init_us"),
            _int(raw, "status"), _read_headers(raw, "headers"),
        )  # fmt: skip
    if kind == "end":
        grpc = raw.get("grpc_status")
        if grpc is not None and not isinstance(grpc, int):
            raise CodecError("grpc_status: expected an integer or null")
        return ResponseEnd(
            instance, _int(raw, "id"), _int(raw, "timestamp_us"), _int(raw, "since_request_init_us"),
            _int(raw, "since_response_init_us"), _int(raw, "request_bytes"), _int(raw, "response_bytes"), grpc,
            _str(raw, "failure"), _read_headers(raw, "trailers"), bool(raw.get("response_started", True)),
        )  # fmt: skip
    if kind == "body":
        text = _str(raw, "data")
        try:
            data = base64.b64decode(text, validate=True) if raw.get("encoding") == "base64" else text.encode()
        except binascii.Error:
            raise CodecError("data: not valid base64") from None
        return BodyChunk(instance, _int(raw, "id"), bool(raw.get("request")), data, bool(raw.get("truncated")))
    if kind == "dropped":
        return Dropped(instance, _int(raw, "queue_full"), _int(raw, "rate_limited"))
    raise CodecError(f"type: expected req, rsp, end, body or dropped, got {kind!r}")
