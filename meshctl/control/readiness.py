"""Endpoint readiness from the endpoint proxies themselves (local platform).

Every endpoint whose config names a `probe` (its proxy's admin address) is probed with `GET /ready`
twice a second (ten times a second while one is not ready), all at once with a short timeout. A refused
connection or any answer but 200 makes the endpoint not ready at the next snapshot: the proxy is gone,
still starting, or draining after SIGTERM. A timeout counts only when it repeats, so one slow answer on
a busy machine does not take an endpoint away. An endpoint that has never answered 200 is not ready:
traffic goes only to proxies that serve.

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
TIMEOUT_S = 0.4
TIMEOUTS_TO_FAIL = 2  # consecutive timeouts before a silent proxy counts as not ready
MAX_CONCURRENT = 64
_REQUEST = b"GET /ready HTTP/1.1\r\nHost: meshctl-control\r\nUser-Agent: meshctl-control\r\nConnection: close\r\n\r\n"


async def probe_ready(address: Address, timeout_s: float = TIMEOUT_S) -> bool | None:
    """True when the admin endpoint answers /ready with 200, False when it refuses or answers otherwise,
    None when it did not answer within the timeout."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(address.host, address.port)
            writer.write(_REQUEST)
            status_line = await reader.readline()
    except TimeoutError:
        return None
    except OSError:
        return False
    finally:
        if writer is not None:
            writer.transport.abort()  # nothing more to say; no TIME_WAIT dance for a probe
    parts = status_line.split(b" ", 2)
    return len(parts) >= 2 and parts[1] == b"200"


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
        self._timeouts: dict[Address, int] = {}

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
            self._timeouts.pop(gone, None)
        if changed:
            self._on_change()

    async def _probe(self, address: Address) -> bool | None:
        async with self._limit:
            return await probe_ready(address, self._timeout_s)

    def _record(self, address: Address, result: bool | None) -> bool:
        """Fold one probe result into the state; True when the endpoint's readiness changed."""
        if result is None:
            self._timeouts[address] = timeouts = self._timeouts.get(address, 0) + 1
            if timeouts < TIMEOUTS_TO_FAIL and address in self.ready:
                return False
            result = False
        else:
            self._timeouts.pop(address, None)
        before = self.ready.get(address)
        self.ready[address] = result
        if before == result:
            return False
        if before is not None or result:
            log.info("endpoint proxy %s is %s", address, "ready" if result else "not ready")
        return True
