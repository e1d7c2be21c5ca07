"""Endpoint readiness from the endpoint proxies themselves (local platform).

Every endpoint whose config names a `probe` (its proxy's admin address) is probed with `GET /ready`
twice a second (ten times a second while one is not ready), all at once with a short timeout. A refused
connection, or the proxy's own "503 not ready" (starting, or draining after SIGTERM), makes the endpoint
not ready at the next snapshot. An unclear result (no answer in time, a reset, another answer) counts
only when it repeats three times, so a slow answer on a busy machine does not take an endpoint away.
An endpoint that has never answered 200 is not ready: traffic goes only to proxies that serve.

Where the platform knows readiness itself (Kubernetes: the EndpointSlice `ready` condition), endpoints
come without a probe and keep the `ready` their config gives them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from meshctl.control.config import Address

log = logging.getLogger("meshctl.control.readiness")

INTERVAL_S = 0.5
NOT_READY_INTERVAL_S = 0.1  # while an endpoint is not ready: a starting proxy is routed to at once
TIMEOUT_S = 1.0
UNSURE_TO_FAIL = 3  # consecutive unclear results (timeout, reset, another answer) before "not ready"
MAX_CONCURRENT = 64
_REQUEST = b"GET /ready HTTP/1.1\r\nHost: meshctl-control\r\nUser-Agent: meshctl-control\r\nConnection: close\r\n\r\n"


async def probe_ready(address: Address, timeout_s: float = TIMEOUT_S) -> tuple[bool | None, str]:
    """(True, _) when the admin endpoint answers /ready with 200; (False, why) when the proxy is surely not
    ready: nothing listens, or it says so itself (503 while starting or draining); (None, why) when the
    result is unclear (no answer in time, a reset, any other answer), which counts only when it repeats."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(address.host, address.port)
            writer.write(_REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.read(64)
    except TimeoutError:
        return None, f"no answer within {timeout_s:g}s"
    except ConnectionRefusedError:
        return False, "connection refused"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.transport.abort()  # nothing more to say; no TIME_WAIT dance for a probe
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    if status == b"200":
        return True, "200"
    if status == b"503" and body.startswith(b"not ready"):
        return False, "it answers 503 not ready"
    return None, f"answer {head.splitlines()[0][:60]!r}"


class ReadinessProber:
    """Keeps `ready[address]` for every probed endpoint and calls `on_change` when any of them flips."""

    def __init__(
        self,
        targets: Callable[[], Iterable[Address]],
        on_change: Callable[[], None],
        *,
        interval_s: float = INTERVAL_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._targets = targets
        self._on_change = on_change
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._limit = asyncio.Semaphore(MAX_CONCURRENT)
        self.ready: dict[Address, bool] = {}
        self._unsure: dict[Address, int] = {}

    def is_ready(self, address: Address) -> bool:
        return self.ready.get(address, False)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.probe_all()
            interval = self._interval_s if all(self.ready.values()) else min(self._interval_s, NOT_READY_INTERVAL_S)
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def probe_all(self) -> None:
        targets = sorted(set(self._targets()), key=str)
        results = await asyncio.gather(*(self._probe(address) for address in targets))
        changed = False
        for address, result in zip(targets, results, strict=True):
            changed |= self._record(address, result)
        for gone in set(self.ready) - set(targets):
            del self.ready[gone]
            self._unsure.pop(gone, None)
        if changed:
            self._on_change()

    async def _probe(self, address: Address) -> tuple[bool | None, str]:
        async with self._limit:
            return await probe_ready(address, self._timeout_s)

    def _record(self, address: Address, result: tuple[bool | None, str]) -> bool:
        """Fold one probe result into the state; True when the endpoint's readiness changed."""
        ready, why = result
        if ready is None:
            self._unsure[address] = unsure = self._unsure.get(address, 0) + 1
            if unsure < UNSURE_TO_FAIL and address in self.ready:
                return False
            ready = False
        else:
            self._unsure.pop(address, None)
        before = self.ready.get(address)
        self.ready[address] = ready
        if before == ready:
            return False
        if before is not None or ready:
            log.info("endpoint proxy %s is %s", address, "ready" if ready else f"not ready ({why})")
        return True
