"""`meshctl up`: write the configuration, start every process in dependency order, wait until each one is
ready, and record the mesh in mesh.json. If anything fails, everything started so far is stopped again.

Order: the control plane, Prometheus and the demo apps start at once; the proxies start when the control
plane is ready (they need it for a certificate and their first snapshot); the traffic generator starts
last, once the ingress answers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

from meshctl.errors import ConfigError, ConflictError, MeshError, MeshTimeoutError
from meshctl.platform.local import configs, debug_sidecar, prometheus, state
from meshctl.platform.local.addresses import AddressPlan
from meshctl.platform.local.exposure import write_demo_ingress
from meshctl.platform.local.probes import http_ok, port_in_use, tcp_open
from meshctl.platform.local.processes import is_alive, log_tail, spawn, stop_processes
from meshctl.platform.local.profiles import write_demo_profiles
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, ProcessRecord
from meshctl.platform.local.topology import (
    CONTROL_DEPLOYMENT,
    CONTROL_NAMESPACE,
    DemoOptions,
    Pod,
    Topology,
)

STOP_GRACE_S = 10.0
POLL_S = 0.1

Child = tuple[subprocess.Popen[bytes], ProcessRecord]


class Reporter(Protocol):
    def step(self, message: str) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class UpOptions:
    subnet: str
    demo: DemoOptions | None
    timeout_s: float = 120.0
    python: str = sys.executable
    debug_sidecars: tuple[str, ...] = ()  # targets (deploy/books) whose instances start with a capture


@dataclass(frozen=True)
class UpResult:
    record: MeshRecord
    elapsed_s: float
    replaced_stale: bool


def check_existing(layout: Layout, reporter: Reporter) -> bool:
    """Refuse when a mesh runs in this home; clean up after one that died (then return True)."""
    try:
        existing = state.read_record(layout)
    except ConfigError as exc:
        reporter.note(f"ignoring {layout.mesh_json}: {exc.message}")
        state.remove_record(layout)
        return True
    if existing is None:
        return False
    alive = [p for p in existing.processes() if is_alive(p.pid, p.start_ticks)]
    if alive:
        control = existing.component(f"{CONTROL_DEPLOYMENT}-0")
        pid = control.processes[0].pid if control and control.processes else alive[0].pid
        raise ConflictError(
            f"a mesh is already running (started {existing.started_at}, pid {pid}) in {layout.home}",
            hint="run `meshctl down` first (or use another --home)",
        )
    reporter.note(f"replacing the state of a mesh that stopped without `meshctl down` ({existing.started_at})")
    stop_processes(existing.processes(), grace_s=2.0)  # members a dead group leader may have left
    state.remove_record(layout)
    return True


def check_ports(topology: Topology) -> None:
    for address, what in topology.listen_addresses():
        if port_in_use(address):
            raise ConflictError(
                f"port {address} ({what}) is already in use",
                hint="stop what listens there, or start the mesh on another subnet, "
                "e.g. `meshctl up --subnet 127.78.0.0/16`",
            )


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # logs reach the file as they happen
    # Children import meshctl from where this process did, even when it is not installed.
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


@dataclass
class _Wait:
    what: str  # "control plane", "proxy books-0" ...
    where: str
    check: Callable[[], bool]
    children: list[Child]
    done: bool = False
    state: str = "ready"  # what the progress line says once `check` holds


@dataclass
class Launcher:
    layout: Layout
    record: MeshRecord
    reporter: Reporter
    python: str
    started: list[Child] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    env: dict[str, str] = field(default_factory=_child_env)

    def start(self, component: ComponentRecord, role: str, argv: list[str], log: str) -> Child:
        if self.record.component(component.name) is None:
            self.record.components.append(component)
        # cwd: the state directory, so the mesh never pins the directory `up` was run from.
        child, process = spawn(role, argv, self.layout.log(log), env=self.env, cwd=self.layout.home)
        component.processes.append(process)
        self.started.append((child, process))
        state.write_record(self.layout, self.record)  # so a crash from here on leaves a record to clean up
        return child, process

    def python_module(self, module: str, *args: str) -> list[str]:
        return [self.python, "-m", module, *args]

    def wait(self, waits: list[_Wait], deadline: float) -> None:
        pending = list(waits)
        while pending:
            for wait in pending:
                for child, process in wait.children:
                    if child.poll() is not None:
                        tail = log_tail(process.log)
                        raise MeshError(
                            f"{wait.what} exited with code {child.returncode} before it was ready"
                            + (f"; last lines of its log:\n{tail}" if tail else ""),
                            hint=f"see {process.log}",
                        )
                if wait.check():
                    wait.done = True
                    self.reporter.step(f"{wait.what} {wait.state}  {wait.where}  ({time.monotonic() - self.t0:.1f}s)")
            pending = [w for w in pending if not w.done]
            if pending and time.monotonic() > deadline:
                logs = ", ".join(sorted({p.log for w in pending for _, p in w.children}))
                raise MeshTimeoutError(
                    "not ready in time: " + ", ".join(w.what for w in pending),
                    hint=f"see the logs: {logs} (or raise --timeout)",
                )
            if pending:
                time.sleep(POLL_S)

    def check_alive(self) -> None:
        """Everything started is still running (a process may exit after it was ready)."""
        for child, process in self.started:
            if child.poll() is not None:
                raise MeshError(
                    f"{process.role} (pid {process.pid}) exited with code {child.returncode}",
                    hint=f"see {process.log}",
                )

    def stop_all(self) -> None:
        stop_processes([p for _, p in self.started], grace_s=STOP_GRACE_S)
        for child, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):  # reap: no zombie outlives us
                child.wait(timeout=1.0)


def _components(topology: Topology) -> tuple[ComponentRecord, ComponentRecord]:
    plan = topology.plan
    control = ComponentRecord(
        name=topology.control_pod,
        kind="control-plane",
        namespace=CONTROL_NAMESPACE,
        deployment=CONTROL_DEPLOYMENT,
        pod=topology.control_pod,
        addresses={"api": plan.control_api, "admin": plan.control_admin},
        identity=topology.control_identity,
    )
    prom = ComponentRecord(
        name="prometheus-0",
        kind="prometheus",
        namespace=CONTROL_NAMESPACE,
        deployment="prometheus",
        pod="prometheus-0",
        addresses={"web": plan.prometheus},
    )
    return control, prom


def _pod_component(pod: Pod, kind: str, addresses: dict[str, str]) -> ComponentRecord:
    return ComponentRecord(
        name=pod.pod,
        kind=kind,
        namespace=pod.namespace,
        deployment=pod.deployment,
        pod=pod.pod,
        addresses=addresses,
        identity=pod.identity,
        service=pod.service,
        service_port=pod.port,
        protocol=pod.protocol if pod.service else None,
    )


def _app_args(pod: Pod, demo: DemoOptions) -> list[str]:
    assert pod.service is not None
    args = [pod.service, "--listen", pod.app, "--outbound", pod.outbound, "--pod", pod.pod]
    args += ["--namespace", pod.namespace]
    if pod.service == "books":
        args += ["--failure-rate", f"{demo.failure_rate:g}"]
    if pod.service == "authors":
        args += ["--latency-ms", f"{demo.latency_ms:g}"]
    return args


def prepare(layout: Layout, topology: Topology, reporter: Reporter) -> None:
    """Every file the processes read: identity, tokens, proxy and control configs, profiles, Prometheus."""
    from meshctl.control.ca import ensure_identity_material  # cryptography: only when starting a mesh

    layout.create()
    had_identity = (layout.identity / "ca.pem").exists()
    ensure_identity_material(layout.identity)
    reporter.note(f"identity: trust anchor and issuer {'kept' if had_identity else 'created'} in {layout.identity}")
    configs.write_configs(layout, topology)
    if topology.demo is not None:
        written, kept = write_demo_profiles(layout, topology.namespace)
        if written:
            reporter.note(f"config: {len(written)} ServiceProfiles written to {layout.config}")
        if kept:
            reporter.note(f"config: {len(kept)} existing ServiceProfiles kept in {layout.config}")
        exposed = write_demo_ingress(layout, topology.namespace)
        reporter.note(f"config: the demo's MeshIngress {'written to ' + exposed if exposed else 'kept'}")
    state.write_atomic(layout.prometheus_yml, prometheus.render_config(topology))


def up(layout: Layout, options: UpOptions, reporter: Reporter) -> UpResult:
    plan = AddressPlan.parse(options.subnet)
    topology = Topology(plan, options.demo)
    sidecars = debug_sidecar.chosen(topology, options.debug_sidecars)
    with state.exclusive(layout, "up"):
        replaced = check_existing(layout, reporter)
        binary = prometheus.find_prometheus()
        check_ports(topology)
        prepare(layout, topology, reporter)
        urls = {"prometheus": f"http://{plan.prometheus}"}
        if topology.ingress is not None:
            urls["ingress"] = f"http://{topology.ingress_listen}"
        record = MeshRecord(
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            up_pid=os.getpid(),
            home=str(layout.home),
            subnet=plan.subnet,
            demo=topology.demo is not None,
            urls=urls,
        )
        launcher = Launcher(layout, record, reporter, options.python)
        try:
            _launch(launcher, topology, binary, time.monotonic() + options.timeout_s, sidecars)
        except BaseException:
            reporter.note("stopping what was started")
            launcher.stop_all()
            state.remove_record(layout)
            raise
        record.state = "running"
        state.write_record(layout, record)
        return UpResult(record, time.monotonic() - launcher.t0, replaced)


def _launch(
    launcher: Launcher, topology: Topology, binary: str, deadline: float, sidecars: frozenset[str] = frozenset()
) -> None:
    layout, plan, demo = launcher.layout, topology.plan, topology.demo
    control, prom = _components(topology)
    control_argv = launcher.python_module("meshctl.control", "--config", str(layout.control_json))
    control_child = launcher.start(control, "control", control_argv, "control")
    prom_child = launcher.start(prom, "prometheus", prometheus.command(binary, layout, topology), "prometheus")
    app_waits: list[_Wait] = []
    pods: dict[str, ComponentRecord] = {}
    for pod in topology.workloads:
        assert demo is not None
        addresses = {"app": pod.app, "inbound": pod.inbound, "outbound": pod.outbound, "admin": pod.admin}
        addresses["tap"] = pod.tap
        pods[pod.pod] = component = _pod_component(pod, "workload", addresses)
        if pod.pod in sidecars:
            app_waits.append(_debug_sidecar(launcher, component))
        argv = launcher.python_module("meshctl.demo", *_app_args(pod, demo))
        child = launcher.start(component, "app", argv, pod.pod)
        app_waits.append(_Wait(f"app {pod.pod}", pod.app, partial(tcp_open, pod.app, 0.5), [child]))
    launcher.reporter.step(f"started the control plane, Prometheus and {len(app_waits)} demo apps")
    control_ready = partial(http_ok, plan.control_admin, "/ready", 0.5)
    launcher.wait([_Wait("control plane", plan.control_api, control_ready, [control_child])], deadline)

    proxy_waits: list[_Wait] = []
    for pod in topology.proxies:
        if pod.pod in pods:
            component, what = pods[pod.pod], f"proxy {pod.pod}"
        else:
            addresses = {"ingress": topology.ingress_listen, "admin": pod.admin, "tap": pod.tap}
            component, what = _pod_component(pod, "ingress", addresses), "ingress"
        argv = launcher.python_module("meshctl.proxy", "--config", str(layout.proxy_config(pod.pod)))
        child = launcher.start(component, "proxy", argv, f"{pod.pod}.proxy")
        ready = partial(http_ok, pod.admin, "/ready", 0.5)
        proxy_waits.append(_Wait(what, f"admin {pod.admin}", ready, [child]))
    prom_ready = partial(http_ok, plan.prometheus, "/-/ready", 0.5)
    prom_wait = _Wait("Prometheus", f"http://{plan.prometheus}", prom_ready, [prom_child])
    launcher.wait([*app_waits, *proxy_waits, prom_wait], deadline)
    launcher.check_alive()
    _first_scrape(launcher, topology, prom_child, deadline)

    if demo is not None and topology.traffic:
        target = f"http://{topology.ingress_listen}"
        component = ComponentRecord(
            name="traffic-0",
            kind="traffic",
            namespace=topology.namespace,
            deployment="traffic",
            pod="traffic-0",
            addresses={"target": target, "source": plan.traffic_ip},
        )
        args = ["traffic", "--target", target, "--rps", f"{demo.rps:g}", "--source", plan.traffic_ip]
        launcher.start(component, "traffic", launcher.python_module("meshctl.demo", *args), "traffic")
        launcher.reporter.step(f"traffic generator started  {demo.rps:g} rps → {target}")


def _debug_sidecar(launcher: Launcher, component: ComponentRecord) -> _Wait:
    """The instance's capture starts before its app, so its first request is in the pcap."""
    argv = debug_sidecar.argv(launcher.layout, component)
    child = launcher.start(component, debug_sidecar.ROLE, argv, f"{component.pod}.debug")
    return _Wait(f"debug sidecar {component.pod}", "capturing on lo", partial(debug_sidecar.ready, child[1].log),
                 [child])  # fmt: skip


def _first_scrape(launcher: Launcher, topology: Topology, prom_child: Child, deadline: float) -> None:
    """Return only once Prometheus has scraped every proxy once, so `meshctl up && meshctl check --proxy`
    passes and `routes`/`stat` find series (Prometheus loads its targets and scrapes within an interval)."""
    if not topology.proxies:
        return
    address = topology.plan.prometheus
    count = len(topology.proxies)
    launcher.reporter.note(f"waiting for Prometheus to scrape the {count} proxies a first time")

    def scraped() -> bool:
        return prometheus.unscraped_proxies(address, topology, timeout_s=0.5) == []

    what = f"first scrape of {count} {'proxy' if count == 1 else 'proxies'}"
    launcher.wait([_Wait(what, f"http://{address}", scraped, [prom_child], state="done")], deadline)
