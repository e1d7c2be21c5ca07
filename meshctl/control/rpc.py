"""What a gRPC method of the control plane sees of its call: status codes, the peer, and how to refuse.

The services (identity_service, discovery_service) are written against this, not against grpcio, so the
control plane's own server (grpc_server.py) runs them with no grpcio in the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NoReturn


class StatusCode(IntEnum):
    """gRPC's status codes (grpc/doc/statuscodes.md), named as grpcio names them."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Aborted(Exception):
    """A call ended by its method with a status other than OK."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallContext:
    __slots__ = ("_peer",)

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        """The client's address as grpcio writes it: ipv4:127.0.0.1:4242."""
        return self._peer

    async def abort(self, code: StatusCode, message: str) -> NoReturn:
        raise Aborted(code, message)


Unary = Callable[[Any, CallContext], Awaitable[Any]]
ServerStreaming = Callable[[Any, CallContext], AsyncIterator[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    """One method: how its request is parsed, how it runs, how its responses become bytes."""

    parse: Callable[[bytes], Any]
    unary: Unary | None = None
    stream: ServerStreaming | None = None
    serialize: Callable[[Any], bytes] = bytes
