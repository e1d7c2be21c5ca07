"""Tap events as plain values: what the store keeps, renderers print and captures hold.

They mirror tap.proto's messages plus `instance`, the pod whose proxy reported them, so events fanned in
from many proxies stay apart (ids are only unique per proxy). Header values are text (Latin-1 decoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from meshctl.api import tap_pb2

INBOUND = "inbound"
OUTBOUND = "outbound"

Headers: TypeAlias = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    identity: str = ""
    workload: str = ""
    namespace: str = ""
    pod: str = ""


@dataclass(frozen=True, slots=True)
class RequestInit:
    instance: str
    id: int
    timestamp_us: int
    direction: str  # INBOUND | OUTBOUND
    source: Endpoint
    destination: Endpoint
    tls: bool
    method: str
    authority: str
    path: str
    route: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class ResponseInit:
    instance: str
    id: int
    timestamp_us: int
    since_request_init_us: int
    http_status: int
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class ResponseEnd:
    instance: str
    id: int
    timestamp_us: int
    since_request_init_us: int
    since_response_init_us: int
    request_bytes: int
    response_bytes: int
    grpc_status: int | None = None
    failure: str = ""
    trailers: Headers = ()
    response_started: bool = True


@dataclass(frozen=True, slots=True)
class BodyChunk:
    instance: str
    id: int
    request: bool
    data: bytes
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    instance: str
    queue_full: int
    rate_limited: int


TapEvent: TypeAlias = RequestInit | ResponseInit | ResponseEnd | BodyChunk | Dropped


def _headers(raw: object) -> Headers:
    return tuple((h.name, h.value.decode("latin-1")) for h in raw)  # type: ignore[attr-defined]


def _endpoint(raw: tap_pb2.Endpoint) -> Endpoint:
    return Endpoint(raw.address, raw.identity, raw.workload, raw.namespace, raw.pod)


def from_proto(instance: str, event: tap_pb2.TapEvent) -> TapEvent | None:
    """The value of one wire event; None for an event kind this client does not know (a newer proxy)."""
    kind = event.WhichOneof("event")
    if kind == "request_init":
        r = event.request_init
        direction = {1: INBOUND, 2: OUTBOUND}.get(r.direction, "unknown")
        return RequestInit(
            instance, r.id, r.timestamp_us, direction, _endpoint(r.source), _endpoint(r.destination), r.tls,
            r.method, r.authority, r.path, r.route, _headers(r.headers),
        )  # fmt: skip
    if kind == "response_init":
        s = event.response_init
        return ResponseInit(instance, s.id, s.timestamp_us, s.since_request_init_us, s.http_status, _headers(s.headers))
    if kind == "response_end":
        e = event.response_end
        return ResponseEnd(
            instance, e.id, e.timestamp_us, e.since_request_init_us, e.since_response_init_us, e.request_bytes,
            e.response_bytes, e.grpc_status if e.HasField("grpc_status") else None, e.failure,
            _headers(e.trailers), e.response_started,
        )  # fmt: skip
    if kind == "body":
        b = event.body
        return BodyChunk(instance, b.id, b.request, bytes(b.data), b.truncated)
    if kind == "dropped":
        d = event.dropped
        return Dropped(instance, d.queue_full, d.rate_limited)
    return None
