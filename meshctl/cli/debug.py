"""`meshctl debug TARGET`: a debug sidecar on every instance of a workload.

Local platform: a capture of each instance's plaintext legs (proxy → app and app → proxy) on `lo`, decoded
by tshark into the HTTP requests and responses it carries, printed live and kept as one pcap file. An
instance started with `meshctl up --enable-debug-sidecar` already has its capture running: it is followed.
Kubernetes: an ephemeral `meshctl-debug` container (tshark, tcpdump, curl) next to each pod's proxy, and
the `kubectl` lines that reach it.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import typer

from meshctl.cli.context import CliContext, PlatformName
from meshctl.cli.examples import examples
from meshctl.cli.interrupts import terminate_as_interrupt
from meshctl.cli.style import color_enabled
from meshctl.errors import MeshError, UnreachableError, UsageError

if TYPE_CHECKING:
    from meshctl.debug.events import HttpEvent
    from meshctl.debug.session import DebugSession
    from meshctl.platform.base import ProxyInfo

TARGET_HELP = "deploy/NAME, pod/NAME, svc/NAME or ns/NAME: every instance of it is captured."
FILTER_HELP = "A Wireshark display filter for the lines shown, e.g. 'http.request.method == \"POST\"'."
DEBUG_EXAMPLES = examples(
    ("The HTTP requests to and from every books instance, live", "meshctl debug deploy/books -n booksapp"),
    ("Thirty seconds of one pod's traffic, saved for Wireshark",
     "meshctl debug pod/books-0 -n booksapp --duration 30s --write books.pcap"),
    ("Only POSTs, as JSON lines",
     "meshctl debug deploy/books -n booksapp --filter 'http.request.method == \"POST\"' -o json"),
    ("Kubernetes: an ephemeral debug container next to a pod's proxy",
     "meshctl debug pod/books-5d8f7c9b4-x2x9z -n booksapp --platform kubernetes"),
)  # fmt: skip


def output_format(cli: CliContext, output: str | None) -> str:
    """text or json, from -o after the command or before it (the global -o table means text)."""
    chosen = output or cli.output_flag or "text"
    if chosen == "table":
        chosen = "text"
    if chosen not in ("text", "json"):
        raise UsageError(f"`meshctl debug` prints text or json, not -o {chosen}", hint="use -o text or -o json")
    return chosen


def render(event: HttpEvent, fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(event.document(), separators=(",", ":"))
    leg = "in " if event.direction == "inbound" else "out"
    kind = "req" if event.kind == "request" else "rsp"
    head = f"{kind} pod={event.instance} leg={leg} src={event.src} dst={event.dst}"
    status = f" :status={event.status}" if event.status is not None else ""
    return f"{head}{status} :method={event.method or '?'} :path={event.path or '?'}"


def check_filter(tshark: str, expression: str) -> None:
    """Refuse a display filter tshark cannot compile, before any capture starts."""
    import subprocess

    from meshctl.debug.pcap import default_header
    from meshctl.debug.tshark import check_filter_argv

    with tempfile.NamedTemporaryFile(suffix=".pcap") as empty:
        empty.write(default_header().raw)
        empty.flush()
        done = subprocess.run(check_filter_argv(tshark, expression, empty.name), capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
        hint = "give a Wireshark display filter, e.g. 'http.request.uri contains \"/books\"'"
        raise UsageError(f"--filter {expression!r}: {' '.join(lines[-2:]) or 'refused by tshark'}", hint=hint)


def _local_session(cli: CliContext, proxies: list[ProxyInfo], expression: str | None,
                   out: BinaryIO | None) -> DebugSession:  # fmt: skip
    from meshctl.debug.session import DebugSession
    from meshctl.debug.tshark import decoder_argv, find_tool
    from meshctl.platform.base import Capability
    from meshctl.platform.local import as_local
    from meshctl.platform.local.debug_capture import SIDECAR_ROLE, sources_for
    from meshctl.platform.local.processes import is_alive

    platform = as_local(cli.platform, Capability.LIFECYCLE, "meshctl debug")
    record = platform.record()
    components = []
    for proxy in proxies:
        component = record.component(proxy.pod)
        # A dead debug sidecar leaves the instance running: a capture of its own replaces it.
        serving = [p for p in component.processes if p.role != SIDECAR_ROLE] if component is not None else []
        if component is None or not serving or not all(is_alive(p.pid, p.start_ticks) for p in serving):
            cli.stderr.write(f"debug: {proxy.pod} is not running: not captured\n")
            continue
        components.append(component)
    if not components:
        raise UnreachableError(f"none of the {len(proxies)} instances runs", hint="`meshctl status` shows what runs")
    tshark = find_tool("tshark")
    if expression is not None:
        check_filter(tshark, expression)
    sources, legs = sources_for(platform.home, components)
    http = [leg.port for leg in legs if leg.protocol == "http"]
    http2 = [leg.port for leg in legs if leg.protocol == "grpc"]
    session = DebugSession(sources, legs, decoder_argv(tshark, http, http2, expression), out)
    for source in sources:
        cli.stderr.write(f"debug: {source.instance}: {source.what}\n")
    return session


def _run_local(cli: CliContext, proxies: list[ProxyInfo], fmt: str, expression: str | None, seconds: float | None,
               write: Path | None) -> None:  # fmt: skip
    from meshctl.cli.tapsession import colour

    painted = color_enabled(cli.stdout) and fmt == "text"
    try:
        out = write.open("wb") if write is not None else None
    except OSError as exc:
        hint = "give a file in a directory you can write to"
        raise UsageError(f"--write {write}: {exc.strerror or exc}", hint=hint) from None

    def show(event: HttpEvent) -> None:
        failed = event.status is not None and event.status >= 500
        cli.stdout.write(colour(render(event, fmt), painted, failed) + "\n")
        cli.stdout.flush()

    session: DebugSession | None = None
    try:
        with terminate_as_interrupt():
            session = _local_session(cli, proxies, expression, out)
            try:
                session.start()
                legs, instances = len(session.correlator.legs), len(session.sources)
                until = f"for {seconds:g}s" if seconds else "until Ctrl-C"
                cli.stderr.write(f"debug: capturing {legs} plaintext legs of {_instances(instances)} {until}\n")
                cli.stderr.flush()
                with contextlib.suppress(KeyboardInterrupt):
                    for event in session.live(None if seconds is None else time.monotonic() + seconds):
                        show(event)
                with contextlib.suppress(KeyboardInterrupt):
                    for event in session.finish():
                        show(event)
            finally:
                session.close()
    finally:
        if out is not None:
            out.close()
            if session is None and write is not None:  # nothing was captured: leave no empty file behind
                write.unlink(missing_ok=True)
    _summary(cli, session, write)


def _summary(cli: CliContext, session: DebugSession, write: Path | None) -> None:
    elapsed = time.monotonic() - session.started
    requests, responses = sum(session.requests.values()), sum(session.responses.values())
    instances = _instances(len(session.sources))
    line = f"debug: {requests} requests, {responses} responses from {instances} in {elapsed:.1f}s"
    if write is not None and session.writer is not None:
        line += f"; {session.writer.records} packets in {write} (`tshark -r {write}` reads it)"
    cli.stderr.write(line + "\n")
    for instance, reason in sorted(session.ended.items()):
        if reason is not None:
            cli.stderr.write(f"debug: {instance}: {reason}\n")
    if session.decoder_error is not None:
        raise MeshError(session.decoder_error, hint="the pcap file is complete: read it with `tshark -r FILE`")


def _run_kubernetes(cli: CliContext, proxies: list[ProxyInfo], timeout_s: float, fmt: str) -> None:
    from meshctl.platform.kubernetes.ephemeral import debug_pods

    def progress(text: str) -> None:
        cli.stderr.write(f"debug: {text}\n")
        cli.stderr.flush()

    for attached in debug_pods(cli.platform, proxies, timeout_s, progress):
        if fmt == "json":
            import json

            document = {"namespace": attached.namespace, "pod": attached.pod, "container": attached.container,
                        "how": attached.how, "commands": attached.commands()}  # fmt: skip
            cli.stdout.write(json.dumps(document) + "\n")
            continue
        cli.stdout.write(f"{attached.namespace}/{attached.pod}: {attached.container} {attached.how}\n")
        cli.stdout.write("".join(f"  {line}\n" for line in attached.commands()))


def register(app: typer.Typer) -> None:
    @app.command("debug", epilog=DEBUG_EXAMPLES)
    def debug_command(
        ctx: typer.Context,
        target: str = typer.Argument(..., help=TARGET_HELP),
        duration: str | None = typer.Option(None, "--duration", help="Stop after this long (e.g. 30s)."),
        write: Path | None = typer.Option(None, "--write", help="Save every captured packet as one pcap file."),
        expression: str | None = typer.Option(None, "--filter", help=FILTER_HELP),
        output: str | None = typer.Option(None, "-o", "--output", help="text or json (one object a line)."),
        timeout: str = typer.Option("60s", "--timeout", help="Kubernetes: how long each container may take to run."),
    ) -> None:
        """Capture and decode the plaintext HTTP of every instance of a target (Kubernetes: a debug container)."""
        from meshctl.cli.tapsession import parse_seconds
        from meshctl.targets import parse_target

        cli: CliContext = ctx.obj
        fmt = output_format(cli, output)
        seconds = parse_seconds(duration, "--duration")
        timeout_s = parse_seconds(timeout, "--timeout") or 60.0
        chosen = parse_target(target, cli.namespace or "default")
        if cli.platform_name is PlatformName.KUBERNETES:
            from meshctl.platform.base import Capability

            cli.platform.require(Capability.EPHEMERAL_DEBUG_CONTAINERS, "meshctl debug")
            if write is not None or duration is not None or expression is not None:
                raise UsageError("--write, --duration and --filter capture locally; on Kubernetes the capture "
                                 "runs in the debug container",
                                 hint="run tshark there with the `kubectl exec` line this command prints")  # fmt: skip
            _run_kubernetes(cli, cli.platform.select_proxies(chosen), timeout_s, fmt)
            return
        if write is not None and write.is_dir():
            raise UsageError(f"--write {write} is a directory", hint="give a file name, e.g. --write capture.pcap")
        _run_local(cli, cli.platform.select_proxies(chosen), fmt, expression, seconds, write)


def _instances(count: int) -> str:
    return f"{count} instance" + ("" if count == 1 else "s")
