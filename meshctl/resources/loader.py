"""Reading resources from YAML (or JSON) text and files, multi-document, with located errors.

Every problem names its file, its document (1-based) and its field path, e.g.
    profiles.yaml: document 2: spec.routes[0].timeout: expected a duration such as "300ms" ..., got "fast"
A `kind: List` document (what `kubectl get -o yaml` prints) is expanded into its items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import ConfigError
from meshctl.resources.fields import Problem, child, item, mapping, sequence
from meshctl.resources.kinds import MeshResource, parse_document

RESOURCE_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 4 * 1024 * 1024  # a resource file larger than this is a mistake, not a config

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True, slots=True)
class LocatedProblem:
    source: str
    document: int  # 1-based; 0 when the problem concerns the whole file
    problem: Problem

    def __str__(self) -> str:
        where = self.source if self.document == 0 else f"{self.source}: document {self.document}"
        return f"{where}: {self.problem}"


class ResourceError(ConfigError):
    """One or more documents are invalid; `problems` lists every one of them."""

    def __init__(self, problems: list[LocatedProblem], *, hint: str | None = None) -> None:
        lines = [str(p) for p in problems]
        message = (
            lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)
        )
        super().__init__(message, hint=hint)
        self.problems = problems


def parse_text(text: str, source: str = "<input>") -> list[MeshResource]:
    """All resources of a (multi-document) YAML text; ResourceError lists every problem found."""
    resources: list[MeshResource] = []
    problems: list[LocatedProblem] = []
    for number, document in _documents(text, source, problems):
        found: list[Problem] = []
        resources.extend(_expand(document, found, source, number))
        problems.extend(LocatedProblem(source, number, p) for p in found)
    if problems:
        raise ResourceError(problems)
    return resources


def load_file(path: Path, source: str | None = None) -> list[MeshResource]:
    name = source or str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ResourceError([LocatedProblem(name, 0, Problem("", f"file larger than {MAX_FILE_BYTES} bytes"))])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ResourceError([LocatedProblem(name, 0, Problem("", f"cannot read: {reason}"))]) from None
    return parse_text(text, name)


def resource_files(directory: Path) -> list[Path]:
    """The resource files of a directory (not recursive), in name order; hidden and temp files skipped."""
    return sorted(
        p for p in directory.iterdir() if p.suffix in RESOURCE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def check_unique(resources: Iterable[MeshResource]) -> None:
    """Refuse two documents that define the same resource (kind, namespace, name)."""
    first: dict[tuple[str, str, str], MeshResource] = {}
    problems: list[LocatedProblem] = []
    for resource in resources:
        seen = first.setdefault(resource.key, resource)
        if seen is not resource:
            where = f"{seen.source}: document {seen.document}"
            message = f"{resource.ref} in namespace {resource.namespace} is also defined at {where}"
            problems.append(LocatedProblem(resource.source, resource.document, Problem("metadata.name", message)))
    if problems:
        raise ResourceError(problems)


def _documents(text: str, source: str, problems: list[LocatedProblem]) -> Iterator[tuple[int, object]]:
    import yaml  # here, not above: the proxy reads its resources as JSON and need not carry PyYAML

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    number = 0
    try:
        for document in yaml.load_all(text, Loader=loader):  # a safe loader (CSafeLoader or SafeLoader)
            number += 1
            if document is not None:  # "---" separators around nothing
                yield number, document
    except yaml.YAMLError as exc:
        problems.append(LocatedProblem(source, number + 1, Problem("", _yaml_message(exc))))


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"invalid YAML: {what}"


def _expand(document: object, problems: list[Problem], source: str, number: int) -> list[MeshResource]:
    if isinstance(document, dict) and document.get("kind") == "List" and "items" in document:
        node = mapping(document, "", problems)
        entries = sequence(node.get("items") if node else None, "items", problems) or []
        out: list[MeshResource] = []
        for index, entry in enumerate(entries):
            found: list[Problem] = []
            resource = parse_document(entry, found, source=source, document=number)
            prefix = item("items", index)
            problems.extend(Problem(child(prefix, p.path) if p.path else prefix, p.message) for p in found)
            if resource is not None:
                out.append(resource)
        return out
    resource = parse_document(document, problems, source=source, document=number)
    return [] if resource is None else [resource]
