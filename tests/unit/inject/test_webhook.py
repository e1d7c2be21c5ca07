"""The AdmissionReview handler (no server): what it patches, what it leaves alone, what it refuses."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest

from meshctl.inject import pod
from meshctl.inject.pod import InjectOptions
from meshctl.inject.webhook import ReviewError, review
from meshctl.platform.kubernetes import conventions as k8s

VERSION = "9.9.9"


def a_pod(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "books-5d8f7c6b9-",
            "namespace": "booksapp",
            "labels": {"app": "books", "pod-template-hash": "5d8f7c6b9"},
            "annotations": {k.replace("_", "/"): v for k, v in annotations.items()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "books-5d8f7c6b9",
                                 "uid": "0b5f6f4e-7b1e-4c55-9a51-3f0f4e1a2b3c", "controller": True}],
        },
        "spec": {
            "serviceAccountName": "books",
            "containers": [{"name": "books", "image": "books:1", "ports": [{"containerPort": 7002}]}],
        },
    }  # fmt: skip


ENABLED = {"meshctl.io_inject": "enabled"}


def admission(obj: Any, *, operation: str = "CREATE", namespace: str = "booksapp") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


def answer(document: dict[str, Any]) -> dict[str, Any]:
    response = review(json.dumps(document).encode(), VERSION)
    assert response["apiVersion"] == "admission.k8s.io/v1" and response["kind"] == "AdmissionReview"
    assert response["response"]["uid"] == document["request"]["uid"]
    assert response["response"]["allowed"] is True
    return dict(response["response"])


def patched(obj: dict[str, Any], response: dict[str, Any]) -> Any:
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(obj))


def manual(obj: dict[str, Any]) -> dict[str, Any]:
    after = copy.deepcopy(obj)
    pod.inject_manual(after["metadata"], after["spec"], pod.pod_workload(after["metadata"]),
                      InjectOptions(VERSION, manual=True))  # fmt: skip
    return after


@pytest.mark.parametrize(
    "annotations", [ENABLED, ENABLED | {"meshctl.io_debug-sidecar": "enabled"}], ids=["proxy", "debug"]
)
def test_the_patch_gives_the_pod_inject_manual_gives(annotations: dict[str, str]) -> None:
    obj = a_pod(**annotations)
    assert patched(obj, answer(admission(obj))) == manual(obj)


def test_a_pod_without_the_annotation_is_allowed_unchanged() -> None:
    response = answer(admission(a_pod()))
    assert "patch" not in response and "patchType" not in response


def test_a_pod_is_never_injected_twice() -> None:
    response = answer(admission(manual(a_pod(**ENABLED))))
    assert "patch" not in response


def test_a_refused_pod_is_allowed_with_the_reason_as_a_warning() -> None:
    response = answer(admission(a_pod(**ENABLED), namespace="kube-system"))
    assert "patch" not in response
    assert response["warnings"] == ["meshctl: pod not injected: namespace kube-system is never meshed"]


def test_other_operations_and_kinds_go_through() -> None:
    assert "patch" not in answer(admission(a_pod(**ENABLED), operation="UPDATE"))
    document = admission({"kind": "Service"})
    document["request"]["kind"] = {"group": "", "version": "v1", "kind": "Service"}
    assert "patch" not in answer(document)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(), "v1beta1"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request"),
        (json.dumps(admission(a_pod()) | {"request": {"uid": ""}}).encode(), "request.uid"),
        (json.dumps(admission("not a pod")).encode(), "request.object"),
        (json.dumps(admission({"metadata": [], "spec": {}})).encode(), "metadata and spec"),
    ],
)
def test_a_malformed_review_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ReviewError, match=reason.replace(".", r"\.")):
        review(body, VERSION)


def test_the_proxy_version_is_the_injectors() -> None:
    obj = a_pod(**ENABLED)
    assert patched(obj, answer(admission(obj)))["metadata"]["annotations"][k8s.PROXY_VERSION_ANNOTATION] == VERSION
