"""A handle on one port of one proxy: a (host, port) the CLI can connect to while the handle is open.

`Platform.proxy_port(proxy, port)` returns one. It is a context manager for synchronous code and an async
context manager for asyncio code (entering never blocks on the network: a forward connects when the caller
does), and it carries any protocol: plain HTTP GET/PUT, or a long-lived HTTP/2 stream such as the tap's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class PortHandle(ABC):
    @abstractmethod
    def open(self) -> Address:
        """Make the address reachable (idempotent) and return it."""

    @abstractmethod
    def close(self) -> None:
        """Stop being reachable; connections still open through the handle are closed."""

    def failure(self) -> str | None:
        """Why the last connection through the handle could not reach the port, if it could not."""
        return None

    def __enter__(self) -> Address:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Address:
        return self.open()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DirectPort(PortHandle):
    """The port on the proxy's own address: nothing to set up (the local platform)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = Address(host, port)

    def open(self) -> Address:
        return self.address

    def close(self) -> None:
        pass
