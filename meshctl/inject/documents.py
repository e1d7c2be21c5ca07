"""Manifests in, manifests out: multi-document YAML, JSON (one or several objects) and `kind: List`, with the
pod template of each workload kind found and handed to meshctl.inject.pod.

Output is re-serialised (comments are lost) with every mapping's key order kept, so injecting twice gives
the same bytes as injecting once. What cannot be injected passes through unchanged, with a reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshctl.errors import ConfigError
from meshctl.inject import pod
from meshctl.inject.pod import InjectOptions

# kind → (apiVersion, path from the object to its pod template; () for a Pod itself)
WORKLOADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Pod": ("v1", ()),
    "Deployment": ("apps/v1", ("spec", "template")),
    "StatefulSet": ("apps/v1", ("spec", "template")),
    "DaemonSet": ("apps/v1", ("spec", "template")),
    "ReplicaSet": ("apps/v1", ("spec", "template")),
    "Job": ("batch/v1", ("spec", "template")),
    "CronJob": ("batch/v1", ("spec", "jobTemplate", "spec", "template")),
}


@dataclass(frozen=True)
class Report:
    """One resource's line of the summary: `deployment "books" injected`."""

    kind: str
    name: str
    action: str  # injected | already injected | uninjected | not injected | skipped
    reason: str = ""

    def __str__(self) -> str:
        line = f'{self.kind.lower() or "document"} "{self.name}" {self.action}'
        return f"{line}: {self.reason}" if self.reason else line


def parse_documents(text: str, source: str) -> list[Any]:
    """The documents of a YAML stream, or of one or several concatenated JSON objects."""
    if text.lstrip().startswith(("{", "[")):
        return _json_documents(text, source)
    import yaml

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents: list[Any] = []
    try:
        documents.extend(d for d in yaml.load_all(text, Loader=loader) if d is not None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{source}: document {len(documents) + 1}: invalid YAML{where}: {problem}",
            hint="fix the manifest (`kubectl apply --dry-run=client -f FILE` shows the same problem)",
        ) from None
    return documents


def _json_documents(text: str, source: str) -> list[Any]:
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    while (position := _skip_space(text, position)) < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}: document {len(documents) + 1}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}",
                hint="fix the manifest (`python -m json.tool FILE` shows the same problem)",
            ) from None
        documents.append(document)
    return documents


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


Transform = Callable[[dict[str, Any], dict[str, Any], str, str | None], tuple[str, str]]


def _resource(document: Any, transform: Transform, reports: list[Report]) -> Any:
    """The document with its pod template transformed (a copy), or the document itself when it has none."""
    if not isinstance(document, dict):
        reports.append(Report("", "-", "skipped", "not a Kubernetes object"))
        return document
    kind, meta = str(document.get("kind", "")), document.get("metadata")
    name = str(meta.get("name") or meta.get("generateName") or "-") if isinstance(meta, dict) else "-"
    if kind == "List" and isinstance(document.get("items"), list):
        out = dict(document)
        out["items"] = [_resource(item, transform, reports) for item in document["items"]]
        return out
    known = WORKLOADS.get(kind)
    if known is None:
        reports.append(Report(kind, name, "skipped", f"{kind or 'an object without a kind'} has no pod template"))
        return document
    if document.get("apiVersion") != known[0]:
        reason = f"{kind} of {document.get('apiVersion')} is not injected, only {kind} of {known[0]}"
        reports.append(Report(kind, name, "skipped", reason))
        return document
    out = copy.deepcopy(document)
    template = _walk(out, known[1])
    if template is None or not isinstance(template.get("spec"), dict):
        reports.append(Report(kind, name, "skipped", "it has no pod template spec"))
        return document
    created_meta = not isinstance(template.get("metadata"), dict)
    if created_meta:  # metadata before spec, as Kubernetes prints it; removed again if it stays empty
        entries = [(k, v) for k, v in template.items() if k != "metadata"]
        template.clear()
        template["metadata"] = {}
        template.update(entries)
    template_meta = pod.child_dict(template, "metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    workload = name if kind != "Pod" else pod.pod_workload(template_meta)
    action, reason = transform(template_meta, template["spec"], workload, namespace)
    if not template_meta and (created_meta or (action == "uninjected" and kind != "Pod")):
        del template["metadata"]  # what inject made for its annotations; a Pod keeps its own
    reports.append(Report(kind, name, action, reason))
    return out if action in ("injected", "uninjected") else document


def _walk(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = document
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def inject_documents(documents: list[Any], options: InjectOptions) -> tuple[list[Any], list[Report]]:
    def transform(meta: dict[str, Any], spec: dict[str, Any], workload: str, namespace: str | None) -> tuple[str, str]:
        reason = pod.why_not(meta, spec, namespace)
        if reason is not None:
            return "skipped", reason
        return ("injected", "") if pod.inject(meta, spec, workload, options) else ("already injected", "")

    reports: list[Report] = []
    return [_resource(d, transform, reports) for d in documents], reports


def uninject_documents(documents: list[Any]) -> tuple[list[Any], list[Report]]:
    def transform(meta: dict[str, Any], spec: dict[str, Any], workload: str, namespace: str | None) -> tuple[str, str]:
        return ("uninjected", "") if pod.uninject(meta, spec) else ("not injected", "")

    reports: list[Report] = []
    return [_resource(d, transform, reports) for d in documents], reports


def dump_documents(documents: list[Any], output: str) -> str:
    """YAML (documents separated by `---`) or JSON (one indented object after the other)."""
    if output == "json":
        return "".join(json.dumps(d, indent=2, ensure_ascii=False) + "\n" for d in documents)
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None  # scripts stay readable; PyYAML quotes when it must
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return "---\n".join(
        yaml.dump(d, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1) for d in documents
    )
