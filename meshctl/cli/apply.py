"""`meshctl apply -f FILE|DIR|-`: validate resources, then store them where the control plane reads them.

Every document of every input is validated before anything is written: one invalid document means
nothing changes. Each resource goes to $MESHCTL_HOME/config/<kind>-<namespace>-<name>.yaml, which the
running control plane picks up within a second.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import UsageError

if TYPE_CHECKING:
    from meshctl.resources import MeshResource

Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class Change:
    resource: MeshResource
    path: Path
    action: Action
    content: bytes


def resource_filename(resource: MeshResource) -> str:
    return f"{resource.kind.lower()}-{resource.namespace}-{resource.name}.yaml"


def collect(sources: list[str], read_stdin: Callable[[], str]) -> list[MeshResource]:
    """Every resource of every source, or one ResourceError listing every problem of every file."""
    from meshctl.resources import LocatedProblem, ResourceError, check_unique, load_file, parse_text

    resources: list[MeshResource] = []
    problems: list[LocatedProblem] = []
    for source in sources:
        for name, path in _inputs(source):
            try:
                resources.extend(parse_text(read_stdin(), name) if path is None else load_file(path, name))
            except ResourceError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ResourceError(problems, hint="nothing was applied; fix the documents above and apply again")
    try:
        check_unique(resources)
    except ResourceError as exc:
        raise ResourceError(exc.problems, hint="nothing was applied; keep one definition of each resource") from None
    if not resources:
        raise UsageError("no resources found in the input")
    return resources


def _inputs(source: str) -> list[tuple[str, Path | None]]:
    """(name used in messages, file) of a source; None for stdin."""
    from meshctl.resources import resource_files

    if source == "-":
        return [("<stdin>", None)]
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"{source}: no such file or directory")
    if not path.is_dir():
        return [(source, path)]
    files = resource_files(path)
    if not files:
        raise UsageError(f"{source}: no .yaml, .yml or .json files in this directory")
    return [(str(Path(source) / file.name), file) for file in files]


def plan(resources: list[MeshResource], config_dir: Path) -> list[Change]:
    import yaml

    changes = []
    for resource in resources:
        path = config_dir / resource_filename(resource)
        content = yaml.safe_dump(resource.to_document(), sort_keys=False, allow_unicode=True).encode()
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        action: Action = "created" if current is None else "unchanged" if current == content else "configured"
        changes.append(Change(resource, path, action, content))
    return changes


def write(changes: list[Change]) -> None:
    from meshctl.files import write_atomic

    for change in changes:
        if change.action != "unchanged":
            try:
                write_atomic(change.path, change.content, 0o644)
            except OSError as exc:
                raise UsageError(f"cannot write {change.path}: {exc.strerror or exc}") from None


def render(changes: list[Change], output: OutputFormat, dry_run: bool) -> str:
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        items = [
            {
                "resource": change.resource.ref,
                "kind": change.resource.kind,
                "name": change.resource.name,
                "namespace": change.resource.namespace,
                "result": change.action,
                "file": str(change.path),
            }
            for change in changes
        ]
        from meshctl.cli.watch import document_text

        return document_text({"items": items, "dryRun": dry_run}, output)
    suffix = " (dry run)" if dry_run else ""
    return "".join(f"{change.resource.ref} {change.action}{suffix}\n" for change in changes)


APPLY_EXAMPLES = examples(
    ("Store a ServiceProfile; the proxies receive it live", "meshctl apply -f books-profile.yaml"),
    ("Every resource of a directory, checked but not stored", "meshctl apply -f profiles/ --dry-run"),
)


def register(app: typer.Typer) -> None:
    @app.command("apply", epilog=APPLY_EXAMPLES)
    def apply_command(
        ctx: typer.Context,
        filenames: list[str] = typer.Option(
            ...,
            "-f",
            "--filename",
            help="File, directory (its .yaml/.yml/.json files) or - for stdin; repeatable.",
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show what would change; write nothing."),
    ) -> None:
        """Create or update mesh resources (ServiceProfile ...) from YAML, like `kubectl apply -f`."""
        cli: CliContext = ctx.obj
        from meshctl.platform.base import Capability, require

        # On Kubernetes, mesh resources are custom resources of the cluster: kubectl applies them.
        require(cli.platform_name.value, Capability.RESOURCE_FILES, "meshctl apply")
        changes = plan(collect(filenames, sys.stdin.read), cli.home / "config")
        if not dry_run:
            write(changes)
        cli.stdout.write(render(changes, cli.output, dry_run))
