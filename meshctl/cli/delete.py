"""`meshctl delete -f FILE|DIR|- [--dry-run]` and `meshctl delete KIND NAME...`: remove mesh resources.

As `apply`, every document of every input is validated before anything changes: one invalid document means
nothing is deleted. A resource is found by (kind, namespace, name) in every file of the resource directory,
whatever file holds it; a file left with no resource is removed, one that holds others too is rewritten
without it. The running control plane sees the change within a second and the proxies stop applying it.
A resource that is not there is named on stderr and makes the exit code 1, as with kubectl.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import MeshError, UsageError

if TYPE_CHECKING:
    from meshctl.resources import MeshResource

Key = tuple[str, str, str]  # (kind, namespace, name)
Result = Literal["deleted", "not found"]

DELETE_EXAMPLES = examples(
    ("Remove what a file applied; the proxies stop applying it within a second", "meshctl delete -f books-faults.yaml"),
    ("One resource by kind and name", "meshctl delete fi books-faults -n booksapp"),
    ("What would be removed, changing nothing", "meshctl delete -f profiles/ --dry-run"),
)  # fmt: skip


@dataclass(frozen=True)
class Removal:
    key: Key
    result: Result
    files: tuple[Path, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.key[0].lower()}/{self.key[2]}"


@dataclass(frozen=True)
class FileChange:
    path: Path
    remaining: tuple[MeshResource, ...]  # empty: the file goes


def plan(keys: list[Key], directory: Path) -> tuple[list[Removal], list[FileChange], list[str]]:
    """What deleting `keys` does to the files of `directory`: (per key, per file, unreadable files)."""
    from meshctl.resources import ResourceError, load_file, resource_files

    try:
        files = resource_files(directory)
    except OSError:
        files = []
    wanted = set(keys)
    holders: dict[Key, list[Path]] = {key: [] for key in keys}
    changes: list[FileChange] = []
    skipped: list[str] = []
    for path in files:
        try:
            resources = load_file(path)
        except ResourceError as exc:
            skipped.append(f"{path}: not searched, it does not validate ({exc.problems[0].problem})")
            continue
        keep = tuple(r for r in resources if r.key not in wanted)
        if len(keep) == len(resources):
            continue
        for resource in resources:
            if resource.key in wanted:
                holders[resource.key].append(path)
        changes.append(FileChange(path, keep))
    removals = [Removal(k, "deleted" if holders[k] else "not found", tuple(holders[k])) for k in keys]
    return removals, changes, skipped


def write(changes: list[FileChange]) -> None:
    import yaml

    from meshctl.files import write_atomic

    for change in changes:
        try:
            if change.remaining:
                documents = [r.to_document() for r in change.remaining]
                text = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)
                write_atomic(change.path, text.encode(), 0o644)
            else:
                change.path.unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot change {change.path}: {exc.strerror or exc}",
                             hint="check the permissions of the resource directory") from None  # fmt: skip


def render(removals: list[Removal], output: OutputFormat, dry_run: bool) -> str:
    """The resources deleted (stdout); those not found are for stderr (`not_found_lines`)."""
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        from meshctl.cli.watch import document_text

        items = [{"resource": r.ref, "kind": r.key[0], "namespace": r.key[1], "name": r.key[2], "result": r.result,
                  "files": [str(f) for f in r.files]} for r in removals]  # fmt: skip
        return document_text({"items": items, "dryRun": dry_run}, output)
    suffix = " (dry run)" if dry_run else ""
    return "".join(f"{r.ref} deleted{suffix}\n" for r in removals if r.result == "deleted")


def not_found_lines(removals: list[Removal]) -> str:
    return "".join(f"{r.ref} not found in namespace {r.key[1]}\n" for r in removals if r.result == "not found")


def keys_from_files(sources: list[str]) -> list[Key]:
    from meshctl.cli.apply import collect
    from meshctl.resources import ResourceError

    try:
        resources = collect(sources, sys.stdin.read)
    except ResourceError as exc:
        hint = "nothing was deleted; fix the documents above and delete again"
        raise ResourceError(exc.problems, hint=hint) from None
    return [r.key for r in resources]


def register(app: typer.Typer) -> None:
    from meshctl.cli.completers import resource_kinds, resource_names

    @app.command("delete", epilog=DELETE_EXAMPLES)
    def delete_command(
        ctx: typer.Context,
        kind: str | None = typer.Argument(None, help="A resource type (without -f): serviceprofiles (sp) ...",
                                          autocompletion=resource_kinds),
        names: list[str] | None = typer.Argument(None, help="The resources of that type to delete.",
                                                 autocompletion=resource_names),
        filenames: list[str] | None = typer.Option(
            None, "-f", "--filename", metavar="FILE",
            help="File, directory (its .yaml/.yml/.json files) or - for stdin; repeatable.",
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; change nothing."),
        ignore_not_found: bool = typer.Option(False, "--ignore-not-found", help="A missing resource is no error."),
    ) -> None:  # fmt: skip
        """Delete mesh resources named in files or by kind and name, like `kubectl delete`."""
        from meshctl.platform.base import CAPABILITIES, Capability
        from meshctl.resources.names import resolve_kind

        cli: CliContext = ctx.obj
        platform = cli.platform_name.value
        if Capability.RESOURCE_FILES not in CAPABILITIES.get(platform, frozenset()):
            # On Kubernetes, mesh resources are custom resources of the cluster: kubectl deletes them.
            raise UsageError(f"meshctl delete is not available on the {platform} platform (it needs resource-files)",
                             hint="use `kubectl delete -f FILE` (or `kubectl delete KIND NAME`)")  # fmt: skip
        if filenames and (kind or names):
            raise UsageError("give -f FILE or KIND NAME, not both", hint="e.g. `meshctl delete -f faults.yaml`")
        if filenames:
            keys = keys_from_files(filenames)
        elif kind and names:
            from meshctl.cli.get import namespace_for

            definition = resolve_kind(kind)
            keys = [(definition.kind, namespace_for(cli, definition, n), n) for n in dict.fromkeys(names)]
        else:
            hint = "name it: `meshctl delete -f FILE` or `meshctl delete KIND NAME`"
            raise UsageError("nothing to delete", hint=hint)
        removals, changes, skipped = plan(keys, cli.home / "config")
        for line in skipped:
            cli.stderr.write(f"warning: {line}\n")
        if not dry_run:
            write(changes)
        cli.stdout.write(render(removals, cli.output, dry_run))
        missing = [r for r in removals if r.result == "not found"]
        if missing and not ignore_not_found:
            if cli.output not in (OutputFormat.JSON, OutputFormat.YAML):
                cli.stderr.write(not_found_lines(missing))
            raise MeshError(
                f"{len(missing)} of {len(removals)} resource{'s' if len(removals) != 1 else ''} not found",
                hint="`meshctl get KIND -A` lists what is applied",
            )
