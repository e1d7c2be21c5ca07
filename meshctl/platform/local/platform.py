"""LocalPlatform: the mesh described by $MESHCTL_HOME/mesh.json, checked against the live processes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import ConfigError, UnreachableError, UsageError
from meshctl.platform.base import (
    CAPABILITIES,
    LOCAL,
    ComponentStatus,
    MeshStatus,
    Platform,
    ProcessStatus,
    ProxyInfo,
    no_mesh,
)
from meshctl.platform.local import state
from meshctl.platform.local.addresses import PROXY_ADMIN_PORT, PROXY_TAP_PORT
from meshctl.platform.local.probes import http_ok_many
from meshctl.platform.local.processes import is_alive
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord
from meshctl.platform.logs import LogQuery, LogStream, Source
from meshctl.platform.ports import DirectPort, PortHandle
from meshctl.targets import Target

_PORT_NAMES = {PROXY_ADMIN_PORT: "admin", PROXY_TAP_PORT: "tap"}  # well-known ports, as mesh.json names them

if TYPE_CHECKING:  # up and down load the configuration and identity code: only those two commands need it
    from meshctl.platform.local.down import DownResult
    from meshctl.platform.local.up import Reporter, UpOptions, UpResult

READY_PATHS = {"control-plane": "/ready", "workload": "/ready", "ingress": "/ready", "prometheus": "/-/ready"}
PROBE_TIMEOUT_S = 1.0


def _ready_address(component: ComponentRecord) -> str | None:
    return component.addresses.get("web" if component.kind == "prometheus" else "admin")


class LocalPlatform(Platform):
    name = LOCAL
    capabilities = CAPABILITIES[LOCAL]

    def __init__(self, home: Path, *, prometheus_url: str | None = None) -> None:
        self.home = home
        self.layout = Layout(home)
        self._prometheus_url = prometheus_url

    # --- lifecycle ----------------------------------------------------------------------------------

    def up(self, options: UpOptions, reporter: Reporter) -> UpResult:
        from meshctl.platform.local.up import up

        return up(self.layout, options, reporter)

    def down(self) -> DownResult:
        from meshctl.platform.local.down import down

        return down(self.layout)

    # --- what runs ----------------------------------------------------------------------------------

    def record(self) -> MeshRecord:
        """The mesh record; UnreachableError when no mesh was started in this home."""
        try:
            record = state.read_record(self.layout)
        except ConfigError as exc:
            raise UnreachableError(exc.message, hint="run `meshctl down`, then `meshctl up`") from None
        if record is None:
            raise no_mesh(str(self.home))
        return record

    def status(self) -> MeshStatus:
        record = self.record()
        alive = {(c.name, p.pid): is_alive(p.pid, p.start_ticks) for c in record.components for p in c.processes}
        # Probe readiness only where every process runs: a dead proxy's port might be someone else's.
        probes: list[tuple[ComponentRecord, str]] = []
        for component in record.components:
            path, address = READY_PATHS.get(component.kind), _ready_address(component)
            if path and address and all(alive[(component.name, p.pid)] for p in component.processes):
                probes.append((component, address))
        answers = http_ok_many([(address, READY_PATHS[c.kind]) for c, address in probes], timeout_s=PROBE_TIMEOUT_S)
        ready = {c.name: ok for (c, _), ok in zip(probes, answers, strict=True)}
        components = tuple(self._component_status(c, alive, ready) for c in record.components)
        return MeshStatus(
            platform=self.name,
            location=str(self.home),
            started_at=record.started_at,
            urls=dict(record.urls),
            components=components,
            extra={"state": record.state, "subnet": record.subnet, "demo": record.demo},
        )

    @staticmethod
    def _component_status(
        component: ComponentRecord, alive: dict[tuple[str, int], bool], ready: dict[str, bool]
    ) -> ComponentStatus:
        processes = tuple(
            ProcessStatus(p.role, p.pid, alive[(component.name, p.pid)], p.log) for p in component.processes
        )
        probed = component.kind in READY_PATHS
        is_ready: bool | None = ready.get(component.name, False) if probed else None
        dead = [f"{p.role} (pid {p.pid}) is not running" for p in processes if not p.alive]
        if not processes:
            detail = "not started"
        elif dead:
            detail = "; ".join(dead)
        elif is_ready is False:
            detail = f"{_ready_address(component)} {READY_PATHS[component.kind]} does not answer 200"
        else:
            detail = ""
        return ComponentStatus(
            name=component.name,
            kind=component.kind,
            namespace=component.namespace,
            deployment=component.deployment,
            pod=component.pod,
            addresses=dict(component.addresses),
            processes=processes,
            ready=is_ready,
            detail=detail,
        )

    def proxy_port(self, proxy: ProxyInfo, port: int) -> PortHandle:
        """Where mesh.json says the proxy serves that port (its admin or tap listener), else its own address."""
        name = _PORT_NAMES.get(port)
        component = self.record().component(proxy.pod) if name is not None else None
        recorded = component.addresses.get(name or "") if component is not None else None
        if recorded:
            host, _, number = recorded.rpartition(":")
            return DirectPort(host, int(number))
        return super().proxy_port(proxy, port)

    def proxies(self) -> list[ProxyInfo]:
        record = self.record()
        return [
            ProxyInfo(
                pod=c.pod,
                namespace=c.namespace,
                deployment=c.deployment,
                admin=c.addresses["admin"],
                identity=c.identity or "",
                kind="ingress" if c.kind == "ingress" else "sidecar",
                service=c.service,
                service_port=c.service_port,
            )
            for c in record.components
            if c.kind in ("workload", "ingress") and "admin" in c.addresses
        ]

    def log_streams(self, target: Target | None, query: LogQuery) -> list[LogStream]:
        """The log files mesh.json names for the target's processes of that role (control: the control plane)."""
        from meshctl.platform.local.logs import FileLogStream

        record = self.record()
        if query.source is Source.CONTROL or target is None:
            components = [c for c in record.components if c.kind == "control-plane"]
        else:
            pods = {p.pod for p in self.select_proxies(target)}
            components = [c for c in record.components if c.pod in pods]
        role = query.source.value
        streams: list[LogStream] = [
            FileLogStream(c.pod, Path(p.log), query) for c in components for p in c.processes if p.role == role
        ]
        if not streams:
            raise UsageError(f"no {role} process of {target or 'the control plane'} writes a log in {self.home}",
                             hint="`meshctl status` lists what runs; use --proxy for the proxies' logs")  # fmt: skip
        return streams

    def prometheus_url(self) -> str:
        if self._prometheus_url:
            return self._prometheus_url
        record = self.record()
        return record.urls["prometheus"]

    def resource_dir(self) -> Path:
        return self.layout.config

    def control_plane_admin(self) -> str:
        record = self.record()
        control = next((c for c in record.components if c.kind == "control-plane"), None)
        if control is None:
            raise no_mesh(str(self.home))
        return control.addresses["admin"]
