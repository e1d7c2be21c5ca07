"""The admin endpoint's routes, free of sockets: a request value in, a response value out.

The app knows nothing of the proxy: it is given the metrics to render and callables for readiness,
the log level and the configuration dump, so the control plane serves the same endpoint with its own.
"""

from __future__ import annotations

import ipaddress
import json
import logging
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
            self._set_log_level(level)
        except ValueError as error:
            return text(400, str(error) or "invalid log level")
        log.info("log level set to %r by %s", level, request.peer_host)
        return AdminResponse(204)

    def _get_config(self, _: AdminRequest) -> AdminResponse:
        body = json.dumps(self._config_dump(), indent=2, sort_keys=True, default=str) + "\n"
        return AdminResponse(200, body.encode("utf-8"), JSON)


def _path(target: str) -> str:
    if not target.startswith("/") and "://" in target:  # absolute-form: http://host:port/path
        after_scheme = target.split("://", 1)[1]
        slash = after_scheme.find("/")
        target = after_scheme[slash:] if slash >= 0 else "/"
    return target.split("?", 1)[0].split("#", 1)[0]
