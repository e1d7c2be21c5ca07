"""What an HTTP/1.1 exchange (exchange.py) needs of its two connections, and the deadlines it asks for.

The client's connection (downstream.Downstream) and the upstream one (upstream.Upstream) each offer an
exchange a few fields and calls; these are those contracts, so the exchange never imports either side
(and tests drive it with fakes of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from meshctl.proxy.h1.response import ResponseReader

if TYPE_CHECKING:
    from meshctl.proxy.h1.exchange import Exchange
    from meshctl.proxy.stack import Stack

# what the connection's deadline is for (downstream.py arms it)
HEADER, RESPONSE, PROGRESS, IDLE = 0, 1, 2, 3


class UpstreamConn(Protocol):
    """An upstream HTTP/1.1 connection as an exchange drives it (upstream.Upstream)."""

    wbuf: list[bytes]
    reusable: bool
    closed: bool
    owner: Exchange | None  # the exchange it serves (attach() binds it, unbind() or the pool unbinds)
    reader: ResponseReader

    def unbind(self) -> None: ...

    def pause_reading(self, paused: bool) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Client(Protocol):
    """The downstream connection, as its exchanges see it."""

    stack: Stack
    wbuf: list[bytes]
    close_after: bool
    writing_paused: bool
    peer_identity: str | None

    def peer_address(self) -> str: ...

    def now(self) -> float: ...

    def arm(self, kind: int, seconds: float, now: float = 0.0) -> None: ...

    def later(self, seconds: float, callback: Callable[[], None]) -> None: ...

    def progress(self) -> None: ...

    def buffering(self, full: bool) -> None: ...

    def connect(self, ex: Exchange, fresh: bool) -> None: ...

    def exchange_done(self, ex: Exchange, reuse: UpstreamConn | None) -> None: ...

    def flush(self) -> None: ...

    def abort(self, reason: str) -> None: ...
