"""Tap events as lines: Linkerd's `req`/`rsp`/`end` format (text), the same with metadata (wide), and
one JSON object per line (json). Drop notices are diagnostics: `drop_note` words them for stderr.

    req id=webapp-0:7 proxy=in  src=127.77.0.4:51012 dst=127.77.1.1:7000 tls=true :method=GET :authority=… :path=/
    rsp id=webapp-0:7 proxy=in  src=… dst=… tls=true :status=200 latency=3366µs
    end id=webapp-0:7 proxy=in  src=… dst=… tls=true duration=132µs response-length=1505B
"""

from __future__ import annotations

from meshctl.tapping.capture import dumps
from meshctl.tapping.events import (
    INBOUND,
    BodyChunk,
    Dropped,
    Endpoint,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    TapEvent,
)
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter_syntax import GRPC_CODES

FORMATS = ("text", "wide", "json")
BODY_PREVIEW = 120  # characters of a body shown on a text line
_GRPC_NAMES = {code: name.title().replace("_", "") for name, code in GRPC_CODES.items()}
_GRPC_NAMES[0] = "OK"


def grpc_name(code: int) -> str:
    return _GRPC_NAMES.get(code, str(code))


def _value(text: str) -> str:
    """A field value as one token: quoted when it has spaces, quotes or is empty."""
    if text and not any(c.isspace() or c in '"\\' for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _flow(exchange: Exchange | None, instance: str, id: int) -> str:
    head = f"id={instance}:{id}"
    request = exchange.request if exchange is not None else None
    if request is None:
        return head
    proxy = "in " if request.direction == INBOUND else "out"
    tls = "true" if request.tls else "false"
    return f"{head} proxy={proxy} src={request.source.address} dst={request.destination.address} tls={tls}"


def _meta(prefix: str, endpoint: Endpoint) -> list[str]:
    pairs = [
        ("deploy", endpoint.workload),
        ("id", endpoint.identity),
        ("ns", endpoint.namespace),
        ("pod", endpoint.pod),
    ]
    return [f"{prefix}_{key}={_value(value)}" for key, value in pairs if value]


def _wide(exchange: Exchange | None) -> str:
    request = exchange.request if exchange is not None else None
    if request is None:
        return ""
    fields = [*_meta("src", request.source), *_meta("dst", request.destination)]
    fields.append(f"rt_route={_value(request.route or '[DEFAULT]')}")
    return " " + " ".join(fields)


def render(event: TapEvent, exchange: Exchange | None, fmt: str = "text") -> str | None:
    """The output line of one event (None: nothing on stdout, e.g. a drop notice in text)."""
    if fmt == "json":
        return dumps(event)
    if isinstance(event, Dropped):
        return None
    flow = _flow(exchange, event.instance, event.id)
    if isinstance(event, RequestInit):
        line = f"req {flow} :method={event.method} :authority={_value(event.authority)} :path={_value(event.path)}"
    elif isinstance(event, ResponseInit):
        line = f"rsp {flow} :status={event.http_status} latency={event.since_request_init_us}µs"
    elif isinstance(event, ResponseEnd):
        parts = [f"end {flow}"]
        if event.grpc_status is not None:
            parts.append(f"grpc-status={grpc_name(event.grpc_status)}")
        if event.failure:
            parts.append(f"error={_value(event.failure)}")
        parts.append(f"duration={event.since_response_init_us}µs response-length={event.response_bytes}B")
        line = " ".join(parts)
    else:
        line = _body_line(flow, event)
    trace = exchange.trace_id if exchange is not None else None
    if trace is not None:
        line += f" trace_id={trace}"
    return line + _wide(exchange) if fmt == "wide" else line


def _body_line(flow: str, chunk: BodyChunk) -> str:
    # Binary stays on one readable line: undecodable bytes and control characters are escaped.
    decoded = chunk.data.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in decoded)
    cut = len(text) > BODY_PREVIEW or chunk.truncated
    side = "request" if chunk.request else "response"
    return f"body {flow} {side}-body={_value(text[:BODY_PREVIEW])}{' truncated=true' if cut else ''}"


def drop_note(event: Dropped) -> str:
    parts = []
    if event.queue_full:
        parts.append(f"{event.queue_full} dropped (the client read too slowly)")
    if event.rate_limited:
        parts.append(f"{event.rate_limited} over the rate limit (raise --max-rps)")
    return f"tap: {event.instance}: " + ", ".join(parts or ["no requests dropped"])
