"""The stream events an HTTP/2 side (h2/core.py, ends.py) reports to its consumer, the relay (h2/relay.py).

Plain slotted records, one per thing that can happen to a stream or the connection; `Event` is their
union. The events every request has (a request or response head, DATA) usually reach the consumer as
direct calls instead (core.py says when), so these are built only for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.proxy.h2.headers import Block, Header, RequestHead


@dataclass(slots=True)
class Request:
    stream_id: int
    head: RequestHead
    end_stream: bool


@dataclass(slots=True)
class Response:
    stream_id: int
    status: int
    headers: Block
    end_stream: bool


@dataclass(slots=True)
class Body:
    stream_id: int
    data: bytes  # padding is acknowledged by the core; the consumer acknowledges len(data) once written
    end_stream: bool


@dataclass(slots=True)
class Trailers:
    stream_id: int
    headers: list[Header]


@dataclass(slots=True)
class Reset:
    """The stream is gone: reset by the peer, refused by a GOAWAY, or reset here for a malformed block."""

    stream_id: int
    error_code: int
    reason: str


@dataclass(slots=True)
class Window:
    stream_id: int  # 0: the connection window opened


@dataclass(slots=True)
class Goaway:
    """The peer is closing gracefully: streams up to last_stream_id may finish."""

    last_stream_id: int


@dataclass(slots=True)
class Failed:
    """The connection is unusable (protocol error, abuse, peer error GOAWAY); close it after flushing."""

    reason: str


Event = Request | Response | Body | Trailers | Reset | Window | Goaway | Failed
