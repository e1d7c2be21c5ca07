"""What every platform offers the commands: the mesh's components, its proxies and its Prometheus.

Commands ask `open_platform(spec)` for the platform a `PlatformSpec` names and never care whether the mesh is
processes on loopback or pods in a cluster. What only some platforms can do (run the mesh itself, install it,
forward ports) is declared as `Capability` values; a command asks `platform.require(...)`, which refuses
with a one-line error and a hint, instead of testing the platform's class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import ExitCode, UnreachableError, UsageError
from meshctl.platform.ports import DirectPort, PortHandle
from meshctl.targets import Kind, Target

if TYPE_CHECKING:
    from meshctl.platform.logs import LogQuery, LogStream
    from meshctl.platform.resources import ResourceListing
    from meshctl.resources import KindDef

LOCAL = "local"
KUBERNETES = "kubernetes"
PLATFORMS = (LOCAL, KUBERNETES)


@dataclass(frozen=True)
class PlatformSpec:
    """Which platform to open and how: plain values, so the platform never depends on the CLI's types."""

    name: str = LOCAL  # one of PLATFORMS
    home: Path = Path("~/.meshctl")  # the local platform's state directory
    namespace: str | None = None  # `-n`: the namespace whose proxies `proxies()` lists (None: all)
    context: str | None = None  # the kubeconfig context (None: its current one)
    kubeconfig: str | None = None  # the kubeconfig path(s) (None: $KUBECONFIG, else ~/.kube/config)
    prometheus_url: str | None = None  # a Prometheus to use instead of the platform's own


class Capability(StrEnum):
    """What a platform may or may not offer beyond reading the mesh."""

    LIFECYCLE = "lifecycle"  # `meshctl up` / `down`: the platform runs the mesh itself
    INSTALL_INJECT = "install-inject"  # `meshctl install` / `inject`: manifests for a cluster
    EPHEMERAL_DEBUG_CONTAINERS = "ephemeral-debug-containers"  # `meshctl debug` attaches a container to a pod
    PORT_FORWARD = "port-forward"  # proxy ports are reached through the API server, not directly
    RESOURCE_FILES = "resource-files"  # mesh resources are files `meshctl apply` writes (not cluster objects)
    FIX = "fix"  # `meshctl check --fix` can restart components and reissue identity


CAPABILITIES: dict[str, frozenset[Capability]] = {
    LOCAL: frozenset({Capability.LIFECYCLE, Capability.RESOURCE_FILES, Capability.FIX}),
    KUBERNETES: frozenset({Capability.INSTALL_INJECT, Capability.EPHEMERAL_DEBUG_CONTAINERS, Capability.PORT_FORWARD}),
}

# What to do instead, per missing capability: the hint of the refusal.
_WITHOUT: dict[Capability, str] = {
    Capability.LIFECYCLE: "on Kubernetes the cluster runs the mesh: install it with "
    "`meshctl install | kubectl apply -f -`, or use --platform local",
    Capability.INSTALL_INJECT: "the local platform installs itself: run `meshctl up`, or use --platform kubernetes",
    Capability.EPHEMERAL_DEBUG_CONTAINERS: "debug containers need a cluster: use --platform kubernetes",
    Capability.PORT_FORWARD: "the local platform reaches proxies directly: no forward is needed",
    Capability.RESOURCE_FILES: "use `kubectl apply -f FILE` (the CRDs come with `meshctl install`)",
    Capability.FIX: "repair the cluster's workloads with kubectl (`meshctl check explain CODE` says how)",
}


def require(platform: str, capability: Capability, command: str) -> None:
    """Refuse (UsageError, exit 2) a command that needs what the named platform does not offer; callers ask
    before opening the platform, so a refusal never waits for a cluster."""
    if capability not in CAPABILITIES.get(platform, frozenset()):
        raise UsageError(
            f"{command} is not available on the {platform} platform (it needs {capability.value})",
            hint=_WITHOUT[capability],
        )


@dataclass(frozen=True)
class ProcessStatus:
    role: str  # "app", "proxy", "control", "prometheus", "traffic"
    pid: int
    alive: bool
    log: str | None = None


@dataclass(frozen=True)
class ComponentStatus:
    """One component ("pod") of the mesh and whether it runs."""

    name: str
    kind: str  # "control-plane", "workload", "ingress", "prometheus", "traffic"
    namespace: str
    deployment: str
    pod: str
    addresses: Mapping[str, str]  # role -> "host:port" or URL ("app", "admin", "api", "ingress", "web" ...)
    processes: tuple[ProcessStatus, ...]
    ready: bool | None  # the admin /ready answer; None where there is no readiness endpoint
    detail: str = ""  # why it is not running, when it is not

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(p.alive for p in self.processes) and self.ready is not False

    @property
    def state(self) -> str:
        if self.running:
            return "running"
        if any(p.alive for p in self.processes):
            return "not ready" if all(p.alive for p in self.processes) else "degraded"
        return "down"


@dataclass(frozen=True)
class MeshStatus:
    platform: str
    location: str  # the state directory (local) or the cluster context
    started_at: str | None  # ISO 8601 UTC
    urls: Mapping[str, str]  # "ingress", "prometheus"
    components: tuple[ComponentStatus, ...]
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def all_running(self) -> bool:
        return bool(self.components) and all(c.running for c in self.components)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.all_running else ExitCode.FAILED


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy the CLI can talk to: its admin endpoint (metrics, readiness, log level, config) and labels."""

    pod: str
    namespace: str
    deployment: str
    admin: str  # "host:port" of the admin HTTP server
    identity: str
    kind: str  # "sidecar" | "ingress"
    service: str | None = None  # the service the pod backs (sidecars of demo services)
    service_port: int | None = None


class Platform(ABC):
    """Read access to a running mesh; implemented by the local and the kubernetes platform."""

    name: str
    capabilities: frozenset[Capability] = frozenset()

    def require(self, capability: Capability, command: str) -> None:
        """Refuse (UsageError, exit 2) a command that needs what this platform does not offer."""
        if capability not in self.capabilities:
            require(self.name, capability, command)

    def proxy_port(self, proxy: ProxyInfo, port: int) -> PortHandle:
        """A reachable (host, port) for one port of a proxy (its admin or tap port), for plain HTTP requests
        and long-lived HTTP/2 streams alike: `with platform.proxy_port(p, 4191) as address: ...`. Here the
        proxy's own address (its admin host, the port asked for); Kubernetes forwards through the API server."""
        host, _, _ = proxy.admin.rpartition(":")
        if not host:
            raise UnreachableError(f"{proxy.namespace}/{proxy.pod} has no address yet", hint="wait for it to start")
        return DirectPort(host, port)

    def control_plane_version(self) -> str:
        """The version the running control plane reports (its admin /metrics' control_build_info);
        UnreachableError when it cannot be asked."""
        import http.client
        import re

        address = self.control_plane_admin()
        host, _, port = address.rpartition(":")
        connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=3.0)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise UnreachableError(f"the control plane's admin endpoint {address} does not answer: {exc}",
                                   hint="`meshctl status` shows whether the control plane runs") from None  # fmt: skip
        finally:
            connection.close()
        found = re.search(r'^control_build_info\{[^}]*\bversion="([^"]*)"', text, re.MULTILINE)
        if response.status != 200 or found is None:
            raise UnreachableError(
                f"the control plane's admin endpoint {address} reports no version (/metrics answered "
                f"{response.status})",
                hint="`meshctl check` says why",
            )
        return found[1]

    def log_streams(self, target: Target | None, query: LogQuery) -> list[LogStream]:
        """One stream of log lines per instance of a target (its proxies' or its apps' logs), or per
        control-plane instance for `Source.CONTROL` (target None); UsageError when the target has none."""
        raise UsageError(f"logs are not available on the {self.name} platform", hint="use `kubectl logs`")

    def resource_dir(self) -> Path | None:
        """Where the mesh's resources (ServiceProfiles ...) are files (Capability.RESOURCE_FILES), else None."""
        return None

    def list_resources(self, kinds: Iterable[KindDef], namespace: str | None,
                       missing_ok: bool = False) -> ResourceListing:  # fmt: skip
        """The stored mesh resources of `kinds` in `namespace` (None: every namespace): the files of
        `resource_dir()` here; the cluster's custom objects on Kubernetes."""
        from meshctl.platform.resources import ResourceListing, read_directory

        directory = self.resource_dir()
        return ResourceListing() if directory is None else read_directory(directory, kinds, namespace)

    def services_of(self, proxies: Iterable[ProxyInfo]) -> dict[str, tuple[str, ...]]:
        """The services each proxy's pod backs (pod name -> service names)."""
        return {p.pod: (p.service,) if p.service else () for p in proxies}

    def close(self) -> None:  # noqa: B027 (most platforms hold nothing open)
        """Let go of what the platform holds open (relays, clients); the platform is not used afterwards."""

    @abstractmethod
    def status(self) -> MeshStatus:
        """Every component and whether it runs; UnreachableError when no mesh exists."""

    @abstractmethod
    def proxies(self) -> list[ProxyInfo]:
        """Every proxy of the mesh (sidecars and ingress); UnreachableError when no mesh exists."""

    @abstractmethod
    def prometheus_url(self) -> str:
        """Base URL of the Prometheus that scrapes the proxies (e.g. http://127.77.0.3:9090)."""

    @abstractmethod
    def control_plane_admin(self) -> str:
        """host:port of the control plane's admin server (/metrics, /ready)."""

    def select_proxies(self, target: Target) -> list[ProxyInfo]:
        """The proxies a kubectl-style target names; UsageError when it names none."""
        proxies = self.proxies()
        chosen = select(proxies, target)
        if not chosen:
            raise no_match(target, proxies)
        return chosen


def no_match(target: Target, proxies: Sequence[ProxyInfo]) -> UsageError:
    """The refusal of a target that names no proxy: it names the namespace to add when the target exists in
    another one, as every command that takes a target says it."""
    elsewhere = sorted({p.namespace for p in proxies if select([p], replace(target, namespace=p.namespace))})
    hint = "`meshctl status` lists the pods of the mesh"
    if elsewhere and target.kind is not Kind.NAMESPACE:
        hint = f"it exists in namespace {', '.join(elsewhere)}: add -n {elsewhere[0]}"
    return UsageError(f"no meshed pod matches {target} in namespace {target.namespace}", hint=hint)


def select(proxies: Iterable[ProxyInfo], target: Target) -> list[ProxyInfo]:
    def matches(p: ProxyInfo) -> bool:
        if target.kind is Kind.NAMESPACE:
            return target.name is None or p.namespace == target.name
        if p.namespace != target.namespace:
            return False
        if target.name is None:
            return True
        if target.kind is Kind.POD:
            return p.pod == target.name
        if target.kind is Kind.SERVICE:
            return p.service == target.name
        return p.deployment == target.name

    return [p for p in proxies if matches(p)]


def open_platform(spec: PlatformSpec) -> Platform:
    """The platform a spec names (the CLI builds the spec from `--platform`, `--home`, `--context` ...)."""
    if spec.name == KUBERNETES:
        from meshctl.platform.kubernetes import open_kubernetes

        return open_kubernetes(spec)
    if spec.name != LOCAL:
        raise UsageError(f"unknown platform {spec.name!r}", hint=f"use one of: {', '.join(PLATFORMS)}")
    from meshctl.platform.local.platform import LocalPlatform

    return LocalPlatform(spec.home.expanduser(), prometheus_url=spec.prometheus_url)


def no_mesh(location: str) -> UnreachableError:
    return UnreachableError(f"no mesh is running in {location}", hint="start one with `meshctl up`")
