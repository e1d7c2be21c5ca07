"""What every platform offers the commands: the mesh's components, its proxies and its Prometheus.

Commands ask `cli.platform` (see `open_platform`) and never care whether the mesh is processes on loopback
or pods in a cluster. Lifecycle commands (`up`, `down`) exist only where the platform can run a mesh itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshctl.errors import ExitCode, UnreachableError, UsageError
from meshctl.targets import Kind, Target

if TYPE_CHECKING:
    from meshctl.cli.context import CliContext


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
    """Read access to a running mesh; implemented by the local platform (and later Kubernetes)."""

    name: str

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
        chosen = select(self.proxies(), target)
        if not chosen:
            raise UsageError(
                f"no meshed pod matches {target} in namespace {target.namespace}",
                hint="`meshctl status` lists the pods of the mesh",
            )
        return chosen


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


def open_platform(cli: CliContext) -> Platform:
    """The platform the global flags select (`--platform`, `--home`)."""
    from meshctl.cli.context import PlatformName

    if cli.platform_name is PlatformName.KUBERNETES:
        from meshctl.platform.kubernetes import open_kubernetes

        return open_kubernetes(cli)
    from meshctl.platform.local.platform import LocalPlatform

    return LocalPlatform(cli.home)


def no_mesh(location: str) -> UnreachableError:
    return UnreachableError(f"no mesh is running in {location}", hint="start one with `meshctl up`")
