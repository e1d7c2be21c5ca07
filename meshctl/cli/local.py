"""`meshctl up`, `meshctl down` and `meshctl status`: run the local mesh and see what runs.

Progress goes to stderr as it happens; the result (where things are, the status table or JSON) goes to
stdout. Heavy modules are imported inside the commands so `meshctl --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

import typer

from meshctl.cli.completers import namespace_names
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.cli.interrupts import terminate_as_interrupt
from meshctl.cli.style import Palette, Tone, color_enabled
from meshctl.errors import ExitCode, MeshError, UsageError

if TYPE_CHECKING:
    from meshctl.platform.base import ComponentStatus, MeshStatus
    from meshctl.platform.local.platform import LocalPlatform
    from meshctl.platform.local.up import UpResult


class StreamReporter:
    """Progress of `up` as lines on stderr."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.paint = Palette.for_stream(stream)

    def step(self, message: str) -> None:
        self.stream.write(f"  {self.paint(Tone.GOOD, '✓')} {message}\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(f"  {message}\n")
        self.stream.flush()


def _lifecycle(cli: CliContext, command: str) -> LocalPlatform:
    """The platform, for a command that runs the mesh itself (refused, before connecting, where it cannot)."""
    from meshctl.platform.base import Capability, require
    from meshctl.platform.local import as_local

    require(cli.platform_name.value, Capability.LIFECYCLE, command)
    return as_local(cli.platform, Capability.LIFECYCLE, command)


# --- rendering ------------------------------------------------------------------------------------------


def _addresses(component: ComponentStatus, wide: bool) -> str:
    keys = {
        "control-plane": ("api", "admin"),
        "workload": ("app", "admin", "inbound", "outbound") if wide else ("app", "admin"),
        "ingress": ("ingress", "admin"),
        "prometheus": ("web",),
        "traffic": ("target",),
    }.get(component.kind, tuple(component.addresses))
    return "  ".join(f"{k} {component.addresses[k]}" for k in keys if k in component.addresses)


def render_table(status: MeshStatus, wide: bool = False, color: bool = False) -> str:
    if status.platform != "local":
        from meshctl.cli.kubestatus import render_kube_table

        return render_kube_table(status, wide, color)
    header = ["NAMESPACE", "POD", "KIND", "STATUS", "PIDS", "ADDRESSES"]
    rows = [
        [
            c.namespace,
            c.pod,
            c.kind,
            c.state,
            ",".join(str(p.pid) for p in c.processes if p.pid) or "-",  # no pids on Kubernetes
            _addresses(c, wide),
        ]
        for c in status.components
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    paint = Palette(color)
    if status.platform == "local":
        lines = [f"Local mesh in {status.location} (subnet {status.extra.get('subnet')}), started {status.started_at}"]
    else:
        lines = [f"Mesh on {status.platform} in {status.location}"]
    if status.extra.get("state") == "starting":
        lines[0] += " — still starting"
    lines.append("")
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        if row is not header:
            cells[3] = paint(Tone.GOOD if row[3] == "running" else Tone.BAD, cells[3])
        lines.append("   ".join([*cells, row[-1]]).rstrip())
    lines.append("")
    running = sum(1 for c in status.components if c.running)
    lines.append(f"{running} of {len(status.components)} components running")
    for component in status.components:
        if not component.running:
            lines.append(f"  {component.pod}: {component.detail or component.state}")
    for name in ("ingress", "prometheus"):
        if name in status.urls:
            lines.append(f"{name + ':':12} {status.urls[name]}")
    return "\n".join(lines) + "\n"


def status_json(status: MeshStatus) -> dict[str, object]:
    """The stable machine-readable status (keys documented by tests/unit/platform/test_status_render.py)."""
    extra: dict[str, object] = {}
    if status.platform != "local":
        from meshctl.cli.kubestatus import deployments

        extra["deployments"] = deployments(status)
    return extra | {
        "platform": status.platform,
        "home": status.location,
        "state": status.extra.get("state"),
        "subnet": status.extra.get("subnet"),
        "started_at": status.started_at,
        "all_running": status.all_running,
        "urls": dict(status.urls),
        "components": [
            {
                "name": c.name,
                "kind": c.kind,
                "namespace": c.namespace,
                "deployment": c.deployment,
                "pod": c.pod,
                "status": c.state,
                "running": c.running,
                "ready": c.ready,
                "addresses": dict(c.addresses),
                "processes": [{"role": p.role, "pid": p.pid, "alive": p.alive, "log": p.log} for p in c.processes],
                "detail": c.detail,
            }
            for c in status.components
        ],
    }


def render_up(result: UpResult, home: str) -> str:
    record = result.record
    workloads = sum(1 for c in record.components if c.kind == "workload")
    processes = len(record.processes())
    lines = [
        f"The mesh is up in {result.elapsed_s:.1f}s: {processes} processes"
        + (f", {workloads} meshed pods" if workloads else ""),
        "",
    ]
    if "ingress" in record.urls:
        lines.append(f"  ingress      {record.urls['ingress']}/")
    lines += [
        f"  prometheus   {record.urls['prometheus']}",
        f"  state        {home}  (logs in {home}/logs)",
        "",
        "  meshctl status     see every component",
        "  meshctl down       stop it (logs, config and identity stay)",
    ]
    return "\n".join(lines) + "\n"


# --- commands -------------------------------------------------------------------------------------------

UP_EXAMPLES = examples(
    ("The demo mesh on loopback, state in ~/.meshctl", "meshctl up"),
    ("Another mesh beside it: its own state directory and subnet", "meshctl --home /tmp/m2 up --subnet 127.78.0.0/16"),
    ("Only the control plane and Prometheus, no demo", "meshctl up --no-demo"),
    ("A demo that fails more and is busier", "meshctl up --failure-rate 0.5 --rps 50"),
    ("The books instances with a debug sidecar from the start", "meshctl up --enable-debug-sidecar deploy/books"),
)
DOWN_EXAMPLES = examples(
    ("Stop the mesh; logs, config and identity stay", "meshctl down"),
    ("Stop it and remove its state directory without asking", "meshctl down --purge --yes"),
)
STATUS_EXAMPLES = examples(
    ("Every component and whether it runs", "meshctl status"),
    ("Only the booksapp namespace, with every address", "meshctl status -n booksapp -o wide"),
    ("For a script", "meshctl status -o json"),
)


def _document(cli: CliContext, document: dict[str, object]) -> None:
    from meshctl.cli.watch import document_text

    cli.stdout.write(document_text(document, cli.output))


def register(app: typer.Typer) -> None:
    @app.command("up", epilog=UP_EXAMPLES)
    def up_command(
        ctx: typer.Context,
        demo: bool = typer.Option(
            True, "--demo/--no-demo", help="Start the booksapp demo, ingress and traffic (default) or not."
        ),
        subnet: str = typer.Option(
            "127.77.0.0/16",
            "--subnet",
            envvar="MESHCTL_SUBNET",
            help="Loopback subnet of the mesh's addresses.",
        ),
        failure_rate: float = typer.Option(
            0.25, "--failure-rate", min=0.0, max=1.0, help="Share of books POST /books answered with 500."
        ),
        latency_ms: float = typer.Option(
            150.0, "--latency-ms", min=0.0, help="Mean latency of the slow route, authors GET /authors/{id}."
        ),
        rps: float = typer.Option(
            10.0, "--rps", min=0.0, max=1000.0, help="Requests per second of the traffic generator (0: none)."
        ),
        timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds to wait for readiness."),
        debug_sidecars: list[str] = typer.Option(
            [], "--enable-debug-sidecar", metavar="TARGET",
            help="Start these instances (deploy/books) with a capture of their plaintext legs (`meshctl debug`).",
        ),  # fmt: skip
    ) -> None:
        """Start the local mesh: control plane, demo app with sidecars, ingress, traffic and Prometheus."""
        from meshctl.platform.local.topology import DemoOptions
        from meshctl.platform.local.up import UpOptions

        cli: CliContext = ctx.obj
        platform = _lifecycle(cli, "meshctl up")
        options = UpOptions(
            subnet=subnet,
            demo=DemoOptions(failure_rate=failure_rate, latency_ms=latency_ms, rps=rps) if demo else None,
            timeout_s=timeout,
            debug_sidecars=tuple(debug_sidecars),
        )
        cli.stderr.write(f"Starting the local mesh in {platform.home} (subnet {subnet})\n")
        try:
            with terminate_as_interrupt():  # `kill` of a starting `up` cleans up like Ctrl-C does
                result = platform.up(options, StreamReporter(cli.stderr))
        except KeyboardInterrupt:
            raise MeshError(
                "interrupted: everything `meshctl up` had started was stopped", exit_code=ExitCode.INTERRUPTED
            ) from None
        if cli.output in (OutputFormat.JSON, OutputFormat.YAML):
            summary = {
                "home": str(platform.home),
                "started_at": result.record.started_at,
                "elapsed_s": round(result.elapsed_s, 3),
                "urls": result.record.urls,
                "processes": len(result.record.processes()),
            }
            _document(cli, summary)
        else:
            cli.stdout.write(render_up(result, str(platform.home)))

    @app.command("down", epilog=DOWN_EXAMPLES)
    def down_command(
        ctx: typer.Context,
        purge: bool = typer.Option(False, "--purge", help="Also remove the state directory (asks first)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before --purge removes anything."),
    ) -> None:
        """Stop everything `meshctl up` started; logs, config and identity stay unless --purge."""
        from meshctl.platform.local.down import check_purgeable, purge_home

        cli: CliContext = ctx.obj
        platform = _lifecycle(cli, "meshctl down")
        if purge:
            check_purgeable(platform.home)
            if not yes:
                if not sys.stdin.isatty():
                    raise UsageError("--purge asks before removing anything", hint="add --yes to skip the question")
                if not typer.confirm(f"Remove {platform.home} (identity, config, logs, metrics)?", err=True):
                    raise MeshError("nothing was stopped or removed", exit_code=ExitCode.FAILED)
        result = platform.down()
        if cli.output in (OutputFormat.JSON, OutputFormat.YAML):
            _document(
                cli,
                {
                    "home": str(platform.home),
                    "was_running": result.was_running,
                    "stopped": result.stopped,
                    "killed": len(result.killed),
                    "elapsed_s": round(result.elapsed_s, 3),
                    "purged": purge_home(platform.home) if purge else False,
                },
            )
            return
        if result.was_running:
            noun = "process" if result.stopped == 1 else "processes"
            cli.stdout.write(f"Stopped the mesh in {platform.home}: {result.stopped} {noun} in {result.elapsed_s:.1f}s")
            cli.stdout.write(f" ({len(result.killed)} needed SIGKILL)\n" if result.killed else "\n")
        else:
            cli.stdout.write(f"No mesh is running in {platform.home}; nothing to stop.\n")
        if purge:
            removed = purge_home(platform.home)
            cli.stdout.write(f"Removed {platform.home}\n" if removed else f"{platform.home} does not exist\n")
        elif result.was_running:
            cli.stdout.write("Logs, config and identity are kept (`meshctl down --purge` removes them).\n")

    @app.command("status", epilog=STATUS_EXAMPLES)
    def status_command(
        ctx: typer.Context,
        namespace: str | None = typer.Option(
            None,
            "-n",
            "--namespace",
            metavar="NAME",
            help="Only the components of this namespace.",
            autocompletion=namespace_names,
        ),
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces", help="Every namespace (the default)."),
    ) -> None:
        """List every component of the mesh and whether it runs (exit 1 when something is down)."""
        from dataclasses import replace

        cli: CliContext = ctx.obj
        status = cli.platform.status()
        ns = None if all_namespaces else namespace or cli.namespace
        if ns is not None:
            if not any(c.namespace == ns for c in status.components):
                known = ", ".join(sorted({c.namespace for c in status.components})) or "none"
                raise UsageError(f"the mesh has no namespace {ns!r}", hint=f"its namespaces: {known}")
            status = replace(status, components=tuple(c for c in status.components if c.namespace == ns))
        fmt = cli.output
        if fmt in (OutputFormat.JSON, OutputFormat.YAML):
            _document(cli, status_json(status))
        else:
            cli.stdout.write(render_table(status, wide=fmt is OutputFormat.WIDE, color=color_enabled(cli.stdout)))
        if not status.all_running:
            down = [c.pod for c in status.components if not c.running]
            raise MeshError(
                f"{len(down)} of {len(status.components)} components not running: {', '.join(down)}",
                hint=f"their logs are in {status.location}/logs; restart with `meshctl down && meshctl up`"
                if status.platform == "local"
                else f"`meshctl logs pod/{down[0]} --proxy` and `kubectl describe pod {down[0]}` say why",
            )
