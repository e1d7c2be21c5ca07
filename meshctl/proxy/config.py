"""ProxyConfig: the JSON document the platform writes for each proxy, parsed into frozen dataclasses.

Every error names the field path ("inbound.listen") so a broken file is fixed in one look.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshctl.errors import ConfigError

BALANCERS = ("ewma", "round-robin", "least-request")
APP_PROTOCOLS = ("http", "grpc")


@dataclass(frozen=True)
class Addr:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class InboundConfig:
    listen: Addr
    app: Addr
    app_protocol: str


@dataclass(frozen=True)
class OutboundConfig:
    listen: Addr


@dataclass(frozen=True)
class IngressConfig:
    """What the ingress exposes is not configured here: MeshIngress resources arrive in the snapshot."""

    listen: Addr


@dataclass(frozen=True)
class AdminConfig:
    listen: Addr


@dataclass(frozen=True)
class ControlTarget:
    address: str  # "host:port", as the gRPC client dials it
    identity: str


@dataclass(frozen=True)
class ProxyConfig:
    pod: str
    namespace: str
    deployment: str
    service_account: str
    identity: str
    inbound: InboundConfig | None
    outbound: OutboundConfig | None
    ingress: IngressConfig | None
    admin: AdminConfig
    control: ControlTarget
    trust_anchors: str
    token_file: str
    balancer: str = "ewma"
    log_level: str = "info"
    tap: AdminConfig | None = None  # the tap gRPC listener; None: no tap

    def to_json(self) -> dict[str, Any]:
        """The effective configuration, for the admin config dump (addresses back to "host:port")."""

        def addr(a: Addr) -> str:
            return str(a)

        return {
            "pod": self.pod,
            "namespace": self.namespace,
            "deployment": self.deployment,
            "service_account": self.service_account,
            "identity": self.identity,
            "inbound": None
            if self.inbound is None
            else {
                "listen": addr(self.inbound.listen),
                "app": addr(self.inbound.app),
                "app_protocol": self.inbound.app_protocol,
            },
            "outbound": None if self.outbound is None else {"listen": addr(self.outbound.listen)},
            "ingress": None
            if self.ingress is None
            else {"listen": addr(self.ingress.listen)},
            "admin": {"listen": addr(self.admin.listen)},
            "control": {"address": self.control.address, "identity": self.control.identity},
            "trust_anchors": self.trust_anchors,
            "token_file": self.token_file,
            "balancer": self.balancer,
            "log_level": self.log_level,
            "tap": None if self.tap is None else {"listen": addr(self.tap.listen)},
        }


def parse_addr(value: object, field: str) -> Addr:
    """"host:port" (IPv6 as "[::1]:port") → Addr."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field}: expected \"host:port\", got {value!r}")
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{field}: expected \"host:port\" with a port in 1..65535, got {value!r}")
    return Addr(host, int(port_text))


class _Doc:
    """A JSON object being read, with the path used in error messages."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path or 'config'}: expected an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def text(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise ConfigError(f"{self._name(key)}: required")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self._name(key)}: expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(f"{self._name(key)}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.raw.get(key) is None else self.text(key)

    def addr(self, key: str) -> Addr:
        if self.raw.get(key) is None:
            raise ConfigError(f"{self._name(key)}: required")
        return parse_addr(self.raw[key], self._name(key))

    def child(self, key: str, *, required: bool) -> _Doc | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise ConfigError(f"{self._name(key)}: required")
            return None
        return _Doc(value, self._name(key))


def parse_proxy_config(raw: object) -> ProxyConfig:
    doc = _Doc(raw, "")
    inbound = outbound = ingress = None
    if (section := doc.child("inbound", required=False)) is not None:
        inbound = InboundConfig(
            section.addr("listen"), section.addr("app"), section.text("app_protocol", "http", choices=APP_PROTOCOLS)
        )
    if (section := doc.child("outbound", required=False)) is not None:
        outbound = OutboundConfig(section.addr("listen"))
    if (section := doc.child("ingress", required=False)) is not None:
        ingress = IngressConfig(section.addr("listen"))
    admin = doc.child("admin", required=True)
    tap = doc.child("tap", required=False)
    control = doc.child("control", required=True)
    assert admin is not None and control is not None
    control_address = control.text("address")
    parse_addr(control_address, "control.address")
    if inbound is None and outbound is None and ingress is None:
        raise ConfigError("config: at least one of inbound, outbound or ingress is required")
    return ProxyConfig(
        pod=doc.text("pod"),
        namespace=doc.text("namespace"),
        deployment=doc.text("deployment", doc.raw.get("pod")),
        service_account=doc.text("service_account", "default"),
        identity=doc.text("identity"),
        inbound=inbound,
        outbound=outbound,
        ingress=ingress,
        admin=AdminConfig(admin.addr("listen")),
        control=ControlTarget(control_address, control.text("identity")),
        trust_anchors=doc.text("trust_anchors"),
        token_file=doc.text("token_file"),
        balancer=doc.text("balancer", "ewma", choices=BALANCERS),
        log_level=doc.text("log_level", "info"),
        tap=None if tap is None else AdminConfig(tap.addr("listen")),
    )


def load_proxy_config_env(name: str, environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """A ProxyConfig held in an environment variable (what `meshctl inject` gives the proxy on Kubernetes)."""
    text = (os.environ if environ is None else environ).get(name)
    hint = "the injected proxy container sets it; re-inject the workload with `meshctl inject`"
    if not text:
        raise ConfigError(f"the environment variable {name} holding the proxy config is not set", hint=hint)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"${name}: not valid JSON (column {exc.colno}): {exc.msg}", hint=hint) from None
    try:
        return parse_proxy_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"${name}: {exc.message}", hint=hint) from None


def load_proxy_config(path: str | Path) -> ProxyConfig:
    """Read and validate a ProxyConfig file; every problem is a ConfigError naming the file and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read proxy config {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    try:
        return parse_proxy_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}", hint="fix the proxy config file and restart the proxy") from None
