"""ControlConfig: what the control plane serves (control.json, written by `meshctl up`).

Relative paths are resolved against the directory of the file. Problems are reported with their field
path, e.g. "control.json: services[0].port: expected an integer from 1 to 65535, got 0".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from meshctl.control.logs import parse_log_level
from meshctl.errors import ConfigError
from meshctl.identity import is_dns_label, parse_identity
from meshctl.resources.fields import (
    Problem,
    boolean,
    child,
    describe,
    integer,
    item,
    known_keys,
    mapping,
    number,
    sequence,
    string,
)

PROTOCOLS = ("http", "grpc")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_token(token: bytes | str) -> str:
    """The token_sha256 stored in control.json for a workload token (surrounding whitespace ignored)."""
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw.strip()).hexdigest()


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TokenEntry:
    pod: str
    token_sha256: str
    identity: str


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    address: str
    port: int
    pod: str
    identity: str
    ready: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    probe: Address | None = None  # the endpoint proxy's admin address: its /ready decides `ready` (local)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    name: str
    namespace: str
    port: int
    protocol: str
    endpoints: tuple[EndpointConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The proxy injector's HTTPS listener (Kubernetes); absent: no injector."""

    listen: Address
    cert: Path
    key: Path


@dataclass(frozen=True)
class ControlConfig:
    listen: Address
    admin: Address
    identity_dir: Path
    config_dir: Path
    tokens: Mapping[str, TokenEntry] = field(default_factory=dict)
    services: tuple[ServiceConfig, ...] = ()
    cert_lifetime_hours: float = 24.0
    mesh_json: Path | None = None
    log_level: str = "info"
    webhook: WebhookConfig | None = None


def load_control_config(path: Path) -> ControlConfig:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return control_config_from_bytes(content, path)


def control_config_from_bytes(content: bytes, path: Path) -> ControlConfig:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason})") from None
    return parse_control_config(data, source=str(path), base=path.parent)


def parse_control_config(data: object, *, source: str = "control.json", base: Path | None = None) -> ControlConfig:
    problems: list[Problem] = []
    config = _parse(data, problems, base or Path.cwd())
    if problems or config is None:
        lines = [f"{source}: {p}" for p in problems]
        raise ConfigError("\n".join(lines) if lines else f"{source}: invalid control configuration")
    return config


def _parse(data: object, problems: list[Problem], base: Path) -> ControlConfig | None:
    node = mapping(data, "", problems, "a JSON object")
    if node is None:
        return None
    known_keys(
        node,
        "",
        problems,
        (
            "listen",
            "admin",
            "identity_dir",
            "config_dir",
            "tokens",
            "services",
            "cert_lifetime_hours",
            "mesh_json",
            "log_level",
            "webhook",
        ),
    )
    listen = _address(node.get("listen"), "listen", problems)
    admin = _address(node.get("admin"), "admin", problems)
    identity_dir = _path(node.get("identity_dir"), "identity_dir", problems, base)
    config_dir = _path(node.get("config_dir"), "config_dir", problems, base)
    tokens = _tokens(node.get("tokens", {}), problems)
    raw_services = sequence(node.get("services", []), "services", problems) or []
    services = [_service(raw, item("services", i), problems) for i, raw in enumerate(raw_services)]
    lifetime = number(node.get("cert_lifetime_hours", 24), "cert_lifetime_hours", problems, minimum=0.01)
    mesh_json = None if node.get("mesh_json") is None else _path(node["mesh_json"], "mesh_json", problems, base)
    log_level = string(node.get("log_level", "info"), "log_level", problems, "a log level such as info")
    if log_level is not None:
        try:
            parse_log_level(log_level)
        except ValueError as exc:
            problems.append(Problem("log_level", str(exc)))
    webhook = None if node.get("webhook") is None else _webhook(node["webhook"], problems, base)
    if (
        problems
        or listen is None
        or admin is None
        or identity_dir is None
        or config_dir is None
        or lifetime is None
        or log_level is None
    ):
        return None
    return ControlConfig(
        listen=listen,
        admin=admin,
        identity_dir=identity_dir,
        config_dir=config_dir,
        tokens=tokens,
        services=tuple(s for s in services if s is not None),
        cert_lifetime_hours=lifetime,
        mesh_json=mesh_json,
        log_level=log_level,
        webhook=webhook,
    )


def _webhook(value: object, problems: list[Problem], base: Path) -> WebhookConfig | None:
    node = mapping(value, "webhook", problems, "an object {listen, cert, key}")
    if node is None:
        return None
    known_keys(node, "webhook", problems, ("listen", "cert", "key"))
    listen = _address(node.get("listen"), "webhook.listen", problems)
    cert = _path(node.get("cert"), "webhook.cert", problems, base)
    key = _path(node.get("key"), "webhook.key", problems, base)
    return None if listen is None or cert is None or key is None else WebhookConfig(listen, cert, key)


def parse_address(text: str) -> Address:
    """ "host:port" or "[v6]:port"; ValueError when malformed."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(text)
    return Address(host, int(port_text))


def _address(value: object, path: str, problems: list[Problem]) -> Address | None:
    if isinstance(value, str):
        try:
            return parse_address(value)
        except ValueError:
            pass
    problems.append(Problem(path, f'expected "host:port" such as "127.77.0.2:8086", got {describe(value)}'))
    return None


def _path(value: object, path: str, problems: list[Problem], base: Path) -> Path | None:
    text = string(value, path, problems, "a path")
    return None if text is None else (base / Path(text).expanduser()).resolve()


def _identity(value: object, path: str, problems: list[Problem]) -> str | None:
    text = string(value, path, problems, "a workload identity")
    if text is None:
        return None
    try:
        parse_identity(text)
    except ValueError:
        problems.append(
            Problem(
                path,
                f"expected a workload identity <sa>.<ns>.serviceaccount.identity..., got {describe(text)}",
            )
        )
        return None
    return text


def _tokens(value: object, problems: list[Problem]) -> dict[str, TokenEntry]:
    node = mapping(value, "tokens", problems, "an object of pod name to {token_sha256, identity}")
    out: dict[str, TokenEntry] = {}
    for pod, raw in (node or {}).items():
        path = child("tokens", pod)
        entry = mapping(raw, path, problems)
        if entry is None:
            continue
        known_keys(entry, path, problems, ("token_sha256", "identity"))
        digest = entry.get("token_sha256")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            problems.append(
                Problem(child(path, "token_sha256"), f"expected 64 lowercase hex digits, got {describe(digest)}")
            )
            continue
        identity = _identity(entry.get("identity"), child(path, "identity"), problems)
        if identity is not None:
            out[pod] = TokenEntry(pod, digest, identity)
    return out


def _service(value: object, path: str, problems: list[Problem]) -> ServiceConfig | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("name", "namespace", "port", "protocol", "endpoints"))
    before = len(problems)
    name = _label(node.get("name"), child(path, "name"), problems)
    namespace = _label(node.get("namespace"), child(path, "namespace"), problems)
    port = integer(node.get("port"), child(path, "port"), problems, minimum=1, maximum=65535)
    protocol = node.get("protocol", "http")
    if protocol not in PROTOCOLS:
        problems.append(Problem(child(path, "protocol"), f'expected "http" or "grpc", got {describe(protocol)}'))
    raw_endpoints = sequence(node.get("endpoints", []), child(path, "endpoints"), problems) or []
    endpoints = [_endpoint(raw, item(child(path, "endpoints"), i), problems) for i, raw in enumerate(raw_endpoints)]
    if len(problems) > before or name is None or namespace is None or port is None:
        return None
    return ServiceConfig(name, namespace, port, str(protocol), tuple(e for e in endpoints if e is not None))


def _endpoint(value: object, path: str, problems: list[Problem]) -> EndpointConfig | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("address", "port", "pod", "identity", "ready", "labels", "probe"))
    before = len(problems)
    address = string(node.get("address"), child(path, "address"), problems, "an IP address")
    port = integer(node.get("port"), child(path, "port"), problems, minimum=1, maximum=65535)
    pod = _label(node.get("pod"), child(path, "pod"), problems)
    identity = _identity(node.get("identity"), child(path, "identity"), problems)
    ready = boolean(node.get("ready", True), child(path, "ready"), problems)
    probe = None if node.get("probe") is None else _address(node["probe"], child(path, "probe"), problems)
    labels_node = mapping(node.get("labels", {}), child(path, "labels"), problems, "an object of strings")
    labels = {k: v for k, v in (labels_node or {}).items() if isinstance(v, str)}
    if labels_node is not None and len(labels) != len(labels_node):
        problems.append(Problem(child(path, "labels"), "expected string values"))
    if len(problems) > before or address is None or port is None or pod is None or identity is None:
        return None
    return EndpointConfig(address, port, pod, identity, ready is not False, labels, probe)


def _label(value: object, path: str, problems: list[Problem]) -> str | None:
    text = string(value, path, problems, "a DNS label (a-z, 0-9, -)")
    if text is not None and not is_dns_label(text):
        problems.append(Problem(path, f"expected a DNS label (a-z, 0-9, -), got {describe(text)}"))
        return None
    return text
