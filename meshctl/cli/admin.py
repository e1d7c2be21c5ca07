"""One GET to the admin endpoint of every proxy of a target, in parallel, through `Platform.proxy_port`
(the proxy's own address locally, a port-forward through the API server on Kubernetes). An instance that
cannot be asked is an answer with an error, so the others still print."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.errors import MeshError

if TYPE_CHECKING:
    from meshctl.platform.base import Platform, ProxyInfo

ADMIN_PORT = 4191  # every proxy's admin endpoint
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class AdminAnswer:
    proxy: ProxyInfo
    body: bytes = b""
    error: str | None = None

    @property
    def instance(self) -> str:
        return self.proxy.pod

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def ask(platform: Platform, proxy: ProxyInfo, path: str, timeout_s: float = TIMEOUT_S) -> AdminAnswer:
    from meshctl.health.probe import http_get

    try:
        with platform.proxy_port(proxy, ADMIN_PORT) as address:
            answer = http_get(str(address), path, timeout_s)
    except MeshError as exc:
        return AdminAnswer(proxy, error=exc.message)
    if answer.status != 200:
        return AdminAnswer(proxy, error=f"{path} answered {answer.status}: {answer.text.strip()[:200]}")
    return AdminAnswer(proxy, answer.body)


def ask_every(platform: Platform, proxies: list[ProxyInfo], path: str) -> list[AdminAnswer]:
    """The answers in the order of `proxies`."""
    from meshctl.health.probe import concurrently

    return concurrently(lambda proxy: ask(platform, proxy, path), proxies, max_workers=8)


def unreachable(answers: list[AdminAnswer]) -> MeshError:
    failed = [a.instance for a in answers if a.error is not None]
    return MeshError(
        f"{len(failed)} of {len(answers)} proxies could not be asked: {', '.join(failed)}",
        hint="`meshctl check --proxy` says what is wrong with them",
    )
