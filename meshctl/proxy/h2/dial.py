"""Dialling upstream connections: plaintext to the app, mTLS with ALPN h2 to another proxy.

An mTLS connection is only handed to the pool once the handshake chose ALPN "h2" and the peer proved
the identity the destination expects: the TLS context checks the certificate's DNS name against
`server_hostname=identity`, and the name the peer presents is compared once more. Failures are the
runtime's `ConnectFailed` / `IdentityMismatch`, which `rescue` answers as UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast

from meshctl.proxy.errors import ConnectFailed, IdentityMismatch
from meshctl.proxy.h2.pool import Dialer

CONNECT_TIMEOUT_S = 5.0


class UpstreamAddress(NamedTuple):
    """A pool key: where to connect and whom to expect there (None: plaintext). The router's
    Endpoint has the same fields and is used as the key for mesh endpoints. A NamedTuple, as Endpoint:
    the HTTP/1.1 pool looks the app's address up twice a request, and tuple hashing runs in C."""

    host: str
    port: int
    identity: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Address(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def identity(self) -> str | None: ...


def plain_dialer(timeout_s: float = CONNECT_TIMEOUT_S) -> Dialer:
    async def dial(key: object, factory: Callable[[], asyncio.Protocol]) -> tuple[Any, Any]:
        endpoint = cast(Address, key)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                return await loop.create_connection(factory, endpoint.host, endpoint.port)
        except TimeoutError:
            raise ConnectFailed(f"connect to {endpoint} timed out") from None
        except OSError as exc:
            raise ConnectFailed(f"connect to {endpoint} failed: {exc.strerror or exc}") from None

    return dial


def tls_dialer(
    context: Callable[[], ssl.SSLContext | None],
    presented: Callable[[Any], str | None],
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> Dialer:
    """`context()` is read per dial, so a renewed certificate serves the next connection;
    `presented(ssl_object)` is the identity the peer's certificate names."""

    async def dial(key: object, factory: Callable[[], asyncio.Protocol]) -> tuple[Any, Any]:
        endpoint = cast(Address, key)
        identity = endpoint.identity
        if not identity:
            raise IdentityMismatch(f"no identity known for {endpoint}: refusing to connect without mTLS")
        ctx = context()
        if ctx is None:
            raise ConnectFailed("no certificate yet: cannot originate mTLS")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                transport, protocol = await loop.create_connection(
                    factory, endpoint.host, endpoint.port, ssl=ctx, server_hostname=identity,
                    ssl_handshake_timeout=timeout_s,
                )  # fmt: skip
        except TimeoutError:
            raise ConnectFailed(f"connect to {endpoint} timed out") from None
        except ssl.SSLCertVerificationError as exc:
            raise IdentityMismatch(f"{endpoint} is not {identity}: {exc.verify_message}") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConnectFailed(f"connect to {endpoint} failed: {getattr(exc, 'strerror', None) or exc}") from None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.abort()
            raise ConnectFailed(f"{endpoint} did not negotiate HTTP/2 (ALPN h2)")
        if presented(ssl_object) != identity:
            transport.abort()
            raise IdentityMismatch(f"{endpoint} presented {presented(ssl_object)}, expected {identity}")
        return transport, protocol

    return dial
