"""gRPC's framing on HTTP/2 as the control plane's server writes it: messages, response heads, statuses.

A message is a 5-byte prefix (compressed flag, big-endian length) and the protobuf bytes. An answer is
HEADERS (:status 200, application/grpc), the messages as DATA, and grpc-status (with grpc-message,
percent-encoded) in trailers, or all in one trailers-only block when the call fails before a message.
"""

from __future__ import annotations

from meshctl.control.rpc import StatusCode
from meshctl.proxy.h2.grpc import encode_message as encode_message  # the proxy's: one percent-encoding

MAX_MESSAGE = 1024 * 1024  # the largest request message accepted, as grpcio's default
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/grpc")]

Header = tuple[bytes, bytes]


class BadRequest(Exception):
    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_block(code: StatusCode, message: str) -> list[Header]:
    block = [(b"grpc-status", b"%d" % code)]
    return block + [(b"grpc-message", encode_message(message))] if message else block


def too_large(received: bytes | bytearray) -> str | None:
    """Why a request that has grown to `received` bytes is refused, or None while it may still fit."""
    if len(received) <= MAX_MESSAGE + 5:
        return None
    size = int.from_bytes(received[1:5], "big")
    return f"Received message larger than max ({size} vs. {MAX_MESSAGE})"


def request_message(raw: bytes) -> bytes:
    """The one message of a request body; BadRequest when the body is not exactly one uncompressed message."""
    if len(raw) < 5 or int.from_bytes(raw[1:5], "big") != len(raw) - 5:
        raise BadRequest(StatusCode.INTERNAL, "expected one length-prefixed message")
    if raw[0] != 0:
        raise BadRequest(StatusCode.UNIMPLEMENTED, "compressed messages are not accepted")
    return raw[5:]


_FRAMED: dict[int, tuple[bytes, bytes]] = {}  # id(message) -> (message, framed): the same bytes for every stream


def framed(body: bytes) -> bytes:
    """The length-prefixed message; the store's snapshot goes to every proxy, framed (copied) once."""
    hit = _FRAMED.get(id(body))
    if hit is not None and hit[0] is body:
        return hit[1]
    out = b"\0" + len(body).to_bytes(4, "big") + body
    if len(_FRAMED) >= 16:
        _FRAMED.clear()
    _FRAMED[id(body)] = (body, out)
    return out
