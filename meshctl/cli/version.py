"""`meshctl version [--client]`: the CLI's version, the control plane's and every proxy's.

The client's version always prints first; when the mesh cannot be reached the rest says why and the
command exits 3 (unreachable), so a script learns the client version whatever the state of the mesh.
The control plane's version comes from the platform (local: its admin endpoint; Kubernetes: the version
label of its deployment), each proxy's from its own admin /metrics (`proxy_build_info`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import typer

from meshctl import __version__
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import ExitCode, MeshError

VERSION_EXAMPLES = examples(
    ("The client's, the control plane's and the proxies' versions", "meshctl version"),
    ("Only the CLI's version; asks nothing of the mesh", "meshctl version --client"),
    ("For a script", "meshctl version -o json"),
)


@dataclass
class Versions:
    control: str | None = None
    control_error: str | None = None
    proxies: list[dict[str, Any]] = field(default_factory=list)  # {"instance", "namespace", "version", "error"}
    proxies_error: str | None = None
    failure: MeshError | None = None  # what the command ends with, after printing what it knows

    def document(self) -> dict[str, Any]:
        return {
            "client": __version__,
            "control_plane": {"version": self.control, "error": self.control_error},
            "proxies": self.proxies,
            "proxies_error": self.proxies_error,
        }

    def lines(self) -> list[str]:
        control = self.control or f"unavailable ({self.control_error})"
        return [f"Client version: {__version__}", f"Control plane version: {control}",
                f"Proxy versions: {self.proxy_summary()}"]  # fmt: skip

    def proxy_summary(self) -> str:
        if self.proxies_error is not None:
            return f"unavailable ({self.proxies_error})"
        if not self.proxies:
            return "no proxies"
        by_version: dict[str, list[str]] = defaultdict(list)
        failed: list[str] = []
        for proxy in self.proxies:
            if proxy["version"] is None:
                failed.append(proxy["instance"])
            else:
                by_version[proxy["version"]].append(proxy["instance"])
        parts = [_count(len(names), f"at {version}") for version, names in sorted(by_version.items())]
        if len(by_version) > 1:  # a mesh mid-upgrade: say which are behind
            parts = [f"{_count(len(n), f'at {v}')} ({', '.join(n)})" for v, n in sorted(by_version.items())]
        if failed:
            parts.append(f"{len(failed)} not answering ({', '.join(failed)})")
        return ", ".join(parts)


def _count(number: int, what: str) -> str:
    return f"{number} {'proxy' if number == 1 else 'proxies'} {what}"


def collect(cli: CliContext) -> Versions:
    from meshctl.cli.admin import ask_every
    from meshctl.health.facts import build_version

    found = Versions()
    try:
        platform = cli.platform
        found.control = platform.control_plane_version()
    except MeshError as exc:
        found.control_error = exc.message
        found.failure = exc
    try:
        proxies = cli.platform.proxies()
    except MeshError as exc:
        found.proxies_error = exc.message
        found.failure = found.failure or exc
        return found
    for answer in ask_every(cli.platform, proxies, "/metrics"):
        version = build_version(answer.text, "proxy_build_info") if answer.error is None else None
        error = answer.error if answer.error is not None else None if version else "/metrics has no proxy_build_info"
        found.proxies.append({"instance": answer.instance, "namespace": answer.proxy.namespace,
                              "version": version, "error": error})  # fmt: skip
    failed = [p["instance"] for p in found.proxies if p["error"] is not None]
    if failed and found.failure is None:
        found.failure = MeshError(
            f"{len(failed)} of {len(found.proxies)} proxies did not report a version: {', '.join(failed)}",
            hint="`meshctl check --proxy` says what is wrong with them",
        )
    return found


def register(app: typer.Typer) -> None:
    @app.command("version", epilog=VERSION_EXAMPLES)
    def version_command(
        ctx: typer.Context,
        client: bool = typer.Option(False, "--client", help="Only the CLI's version (asks nothing of the mesh)."),
    ) -> None:
        """Print the client, control plane and proxy versions (exit 3 when the mesh cannot be reached)."""
        cli: CliContext = ctx.obj
        structured = cli.output in (OutputFormat.JSON, OutputFormat.YAML)
        if client:
            if structured:
                from meshctl.cli.watch import document_text

                cli.stdout.write(document_text({"client": __version__}, cli.output))
            else:
                cli.stdout.write(f"Client version: {__version__}\n")
            return
        if not structured:
            cli.stdout.write(f"Client version: {__version__}\n")  # before anything can go wrong
            cli.stdout.flush()
        found = collect(cli)
        if structured:
            from meshctl.cli.watch import document_text

            cli.stdout.write(document_text(found.document(), cli.output))
        else:
            cli.stdout.write("".join(line + "\n" for line in found.lines()[1:]))
        if found.failure is not None:
            failure = found.failure
            if failure.exit_code is ExitCode.USAGE:  # e.g. no kubeconfig: the mesh is out of reach all the same
                failure = MeshError(failure.message, hint=failure.hint, exit_code=ExitCode.UNREACHABLE)
            raise failure
