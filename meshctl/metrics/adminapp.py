"""The admin endpoint's routes, free of sockets: a request value in, a response value out.

The app knows nothing of the proxy: it is given the metrics to render and callables for readiness,
the log level and the configuration dump, so the control plane serves the same endpoint with its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from meshctl.metrics.exposition import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


class MetricsSource(Protocol):
    def render(self) -> bytes: ...


@dataclass(frozen=True)
class AdminRequest:
    method: str
    target: str  # the request-target as sent: origin-form "/path?query" or absolute-form
    body: bytes = b""
    peer_host: str | None = None  # the TCP peer's address, None when unknown


@dataclass(frozen=True)
class AdminResponse:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


def text(status: int, message: str) -> AdminResponse:
    return AdminResponse(status, message.encode("utf-8") + b"\n")


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything unparsable."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class AdminApp:
    """GET /metrics, /ready, /live, /config.json; GET and PUT /proxy-log-level."""

    def __init__(
        self,
        *,
        metrics: MetricsSource,
        ready: Callable[[], bool],
        get_log_level: Callable[[], str],
        set_log_level: Callable[[str], None],
        config_dump: Callable[[], Mapping[str, Any]],
        may_change: Callable[[str | None], bool] = is_loopback,
    ) -> None:
        """`set_log_level` raises ValueError (with the reason) on bad syntax and changes nothing then.
        `may_change(peer_host)` says which peers may PUT; by default loopback ones only."""
        self._metrics = metrics
        self._ready = ready
        self._get_log_level = get_log_level
        self._set_log_level = set_log_level
        self._config_dump = config_dump
        self._may_change = may_change
        self._revert: tuple[asyncio.TimerHandle, str] | None = None  # a pending `?for=` revert and its level
        get = ("GET", "HEAD")
        self._routes: dict[str, tuple[tuple[str, ...], Callable[[AdminRequest], AdminResponse]]] = {
            "/metrics": (get, self._get_metrics),
            "/ready": (get, self._get_ready),
            "/live": (get, lambda _: text(200, "live")),
            "/proxy-log-level": (("GET", "HEAD", "PUT"), self._log_level),
            "/config.json": (get, self._get_config),
        }

    def handle(self, request: AdminRequest) -> AdminResponse:
        route = self._routes.get(_path(request.target))
        if route is None:
            return text(404, "not found")
        methods, handler = route
        if request.method not in methods:
            return AdminResponse(405, b"method not allowed\n", headers=(("Allow", ", ".join(methods)),))
        try:
            return handler(request)
        except Exception:  # the admin boundary: a failing callable must not take the endpoint down
            log.exception("admin %s %s failed", request.method, request.target)
            return text(500, "internal error")

    def _get_metrics(self, _: AdminRequest) -> AdminResponse:
        return AdminResponse(200, self._metrics.render(), METRICS_CONTENT_TYPE)

    def _get_ready(self, _: AdminRequest) -> AdminResponse:
        return text(200, "ready") if self._ready() else text(503, "not ready")

    def _log_level(self, request: AdminRequest) -> AdminResponse:
        if request.method != "PUT":
            return text(200, self._get_log_level())
        if not self._may_change(request.peer_host):
            return text(403, "Requests are only permitted from localhost.")
        try:
            level = request.body.decode("utf-8").strip()
        except UnicodeDecodeError:
            return text(400, "log level must be UTF-8 text")
        if not level:
            return text(400, "log level is empty; send e.g. 'info' or 'warn,meshctl.proxy=debug'")
        try:
            revert_s = _revert_after(request.target)
        except ValueError as error:
            return text(400, str(error))
        # The level to go back to: the one before any temporary change still pending.
        original = self._revert[1] if self._revert is not None else self._get_log_level()
        try:
            self._set_log_level(level)
        except ValueError as error:
            return text(400, str(error) or "invalid log level")
        if self._revert is not None:
            self._revert[0].cancel()
            self._revert = None
        if revert_s is None:
            log.warning("log level set to %r by %s", level, request.peer_host)  # seen whatever the new level
            return AdminResponse(204)
        handle = asyncio.get_running_loop().call_later(revert_s, self._revert_now, original, level)
        self._revert = (handle, original)
        log.warning("log level set to %r by %s for %gs, then %r again", level, request.peer_host, revert_s, original)
        return AdminResponse(204)

    def _revert_now(self, original: str, temporary: str) -> None:
        """The time of a `?for=` change is up: the level before it comes back, whoever is still watching."""
        self._revert = None
        try:
            self._set_log_level(original)
        except ValueError:  # it was valid when it was set: nothing else can make it fail
            log.exception("log level %r could not be restored", original)
            return
        log.warning("log level %r expired: back to %r", temporary, original)

    def _get_config(self, _: AdminRequest) -> AdminResponse:
        from meshctl import __version__

        # The level in force now (the dump's config holds the one it was started with) and the build, so a
        # reader of /config.json has the whole effective state from one answer.
        dump = {"log_level": self._get_log_level(), "version": __version__} | dict(self._config_dump())
        body = json.dumps(dump, indent=2, sort_keys=True, default=str) + "\n"
        return AdminResponse(200, body.encode("utf-8"), JSON)


MAX_REVERT_S = 24 * 3600.0


def _revert_after(target: str) -> float | None:
    """Seconds from `?for=SECONDS` (how long a new level lasts before the old one returns), None without."""
    query = target.split("?", 1)[1] if "?" in target else ""
    values = urllib.parse.parse_qs(query.split("#", 1)[0]).get("for")
    if not values:
        return None
    try:
        seconds = float(values[-1])
    except ValueError:
        raise ValueError(f"for={values[-1]!r}: expected seconds, e.g. for=300") from None
    if not 0 < seconds <= MAX_REVERT_S:
        raise ValueError(f"for={values[-1]}: expected more than 0 and at most {MAX_REVERT_S:g} seconds")
    return seconds


def _path(target: str) -> str:
    if not target.startswith("/") and "://" in target:  # absolute-form: http://host:port/path
        after_scheme = target.split("://", 1)[1]
        slash = after_scheme.find("/")
        target = after_scheme[slash:] if slash >= 0 else "/"
    return target.split("?", 1)[0].split("#", 1)[0]
