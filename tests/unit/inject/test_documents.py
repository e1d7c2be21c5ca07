"""Reading manifests and finding pod templates: JSON streams, Lists, odd documents, located errors."""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.errors import ConfigError
from meshctl.inject.documents import dump_documents, inject_documents, parse_documents
from meshctl.inject.pod import InjectOptions

OPTIONS = InjectOptions("1.0.0")


def deployment(api_version: str = "apps/v1", **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}
    return {"apiVersion": api_version, "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": template} | spec}  # fmt: skip


def test_json_objects_one_after_the_other_and_a_yaml_stream_read_the_same() -> None:
    as_json = '{"kind": "A"}\n{"kind": "B"}\n  {"kind": "C"}'
    as_yaml = "kind: A\n---\nkind: B\n---\n---\nkind: C\n"
    assert parse_documents(as_json, "x.json") == parse_documents(as_yaml, "x.yaml") == [
        {"kind": k} for k in "ABC"
    ]
    assert parse_documents("", "empty.yaml") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"kind": "A"}\n{"kind": ', "x: document 2: invalid JSON at line 2, column 10"),
        ("kind: A\n---\nkind: [B\n", "x: document 2: invalid YAML at line 4, column 1"),
    ],
)
def test_unreadable_documents_are_located(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_documents(text, "x")
    assert caught.value.message.startswith(message) and caught.value.hint


def test_lists_are_injected_item_by_item_and_stay_lists() -> None:
    nested = {"apiVersion": "v1", "kind": "List", "items": [deployment(), {"kind": "List", "items": [deployment()]}]}
    out, reports = inject_documents([nested], OPTIONS)
    assert [r.action for r in reports] == ["injected", "injected"]
    inner = out[0]["items"][1]["items"][0]
    assert inner["spec"]["template"]["metadata"]["annotations"] == {"meshctl.io/inject": "enabled"}
    assert nested["items"][0] == deployment()  # the input is never changed in place


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (deployment("extensions/v1beta1"),
         "Deployment of extensions/v1beta1 is not injected, only Deployment of apps/v1"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, "it has no pod template spec"),
        ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "Widget has no pod template"),
        ({"metadata": {"name": "x"}}, "an object without a kind has no pod template"),
        ("just a string", "not a Kubernetes object"),
    ],
)  # fmt: skip
def test_what_is_not_a_workload_passes_through_with_its_reason(document: Any, reason: str) -> None:
    out, reports = inject_documents([document], OPTIONS)
    assert out == [document]
    assert [(r.action, r.reason) for r in reports] == [("skipped", reason)]


def test_key_order_is_kept_and_json_output_reads_back() -> None:
    document = {"kind": "Deployment", "apiVersion": "apps/v1", "spec": deployment()["spec"], "metadata": {"name": "z"}}
    out, _ = inject_documents([document], OPTIONS)
    text = dump_documents(out, "yaml")
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")] == [
        "kind", "apiVersion", "spec", "metadata"
    ]  # fmt: skip
    assert parse_documents(dump_documents(out, "json"), "out.json") == out
