"""Facts the checks of every platform share: the live status and proxies, what the control plane and each
proxy say about themselves. Each is loaded once per run (see registry.Fact); a platform's own facts live
under its package (meshctl/platform/<name>/facts.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.errors import UnreachableError
from meshctl.health.probe import concurrently, http_get
from meshctl.health.registry import CheckContext, Fact

if TYPE_CHECKING:
    from meshctl.platform.base import MeshStatus, ProxyInfo

ADMIN_TIMEOUT_S = 1.5
_BUILD_INFO = re.compile(r'^(?P<metric>\w+_build_info)\{[^}]*\bversion="(?P<version>[^"]*)"', re.MULTILINE)


def _status(ctx: CheckContext) -> MeshStatus:
    return ctx.platform.status()


def _proxies(ctx: CheckContext) -> list[ProxyInfo]:
    return ctx.platform.proxies()


STATUS: Fact[MeshStatus] = Fact("mesh status", _status)
PROXIES: Fact[list[ProxyInfo]] = Fact("proxies", _proxies)


def build_version(metrics_text: str, metric: str) -> str | None:
    """The version label of `<metric>{version="..."} 1` in a Prometheus text exposition."""
    for match in _BUILD_INFO.finditer(metrics_text):
        if match["metric"] == metric:
            return match["version"]
    return None


# --- the control plane's admin endpoint ---------------------------------------------------------------------


def _control_admin(ctx: CheckContext) -> str:
    return ctx.platform.control_plane_admin()


def _control_dump(ctx: CheckContext) -> dict[str, Any]:
    address = ctx.get(CONTROL_ADMIN)
    answer = http_get(address, "/config.json", ADMIN_TIMEOUT_S)
    if answer.status != 200:
        raise UnreachableError(f"{address}/config.json answered {answer.status}")
    dump: dict[str, Any] = answer.json()
    return dump


def _control_version(ctx: CheckContext) -> str | None:
    address = ctx.get(CONTROL_ADMIN)
    answer = http_get(address, "/metrics", ADMIN_TIMEOUT_S)
    if answer.status != 200:
        raise UnreachableError(f"{address}/metrics answered {answer.status}")
    return build_version(answer.text, "control_build_info")


CONTROL_ADMIN: Fact[str] = Fact("control plane admin address", _control_admin)
CONTROL_DUMP: Fact[dict[str, Any]] = Fact("control plane config dump", _control_dump)
CONTROL_VERSION: Fact[str | None] = Fact("control plane version", _control_version)


# --- every proxy's admin endpoint ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyAnswer:
    """What one proxy's admin endpoint said: readiness and version, or why it could not be asked."""

    proxy: ProxyInfo
    ready: bool | None = None  # None: not asked (unreachable)
    version: str | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.proxy.namespace}/{self.proxy.pod}"


def ask_proxy(ctx: CheckContext, proxy: ProxyInfo) -> ProxyAnswer:
    try:
        port = int(proxy.admin.rpartition(":")[2])
        with ctx.platform.proxy_port(proxy, port) as admin:
            ready = http_get(str(admin), "/ready", ADMIN_TIMEOUT_S).status == 200
            metrics = http_get(str(admin), "/metrics", ADMIN_TIMEOUT_S)
    except ValueError:
        return ProxyAnswer(proxy, error=f"no admin address ({proxy.admin or 'none yet'})")
    except UnreachableError as exc:
        return ProxyAnswer(proxy, error=exc.message)
    version = build_version(metrics.text, "proxy_build_info") if metrics.status == 200 else None
    return ProxyAnswer(proxy, ready=ready, version=version)


def _proxy_answers(ctx: CheckContext) -> list[ProxyAnswer]:
    proxies: list[ProxyInfo] = ctx.get(PROXIES)
    return concurrently(lambda proxy: ask_proxy(ctx, proxy), proxies)


PROXY_ANSWERS: Fact[list[ProxyAnswer]] = Fact("proxy admin answers", _proxy_answers)


def selected(ctx: CheckContext, proxies: list[ProxyInfo]) -> list[ProxyInfo]:
    """The proxies `--proxy -n NS` is about (all of them without -n)."""
    namespace = ctx.options.namespace
    return [p for p in proxies if namespace is None or p.namespace == namespace]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def listing(names: list[str], limit: int = 5) -> str:
    """A bounded list: "a, b, c" or "a, b, c, d, e and 3 more", however many pods there are."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
