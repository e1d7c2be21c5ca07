"""The proxy injector: an AdmissionReview v1 request in, an AdmissionReview v1 response out (no I/O here).

What it honours: the pod's own annotations (`meshctl.io/inject: enabled`, `meshctl.io/debug-sidecar:
enabled`). The review does not carry the namespace's annotations, so opting a whole namespace in is the
MutatingWebhookConfiguration's job (a namespaceSelector on the namespace's label) — then it is sent here
and still needs the pod annotation, which `meshctl inject` writes. A pod that has the proxy already, or that
`why_not` refuses (kube-system, hostNetwork, `inject: disabled`...), is allowed unchanged; the refusal
comes back as a warning, which kubectl prints. Every pod is allowed: the injector never blocks a pod.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from meshctl.inject import pod
from meshctl.inject.patch import make_patch
from meshctl.inject.pod import InjectOptions
from meshctl.platform.kubernetes import conventions as k8s

API_VERSION = "admission.k8s.io/v1"
MAX_BODY_BYTES = 3 * 1024 * 1024  # the API server's own request limit; a pod is far smaller


class ReviewError(ValueError):
    """A body that is not an AdmissionReview v1 request: answered 400 with this reason."""


def review(body: bytes, version: str) -> dict[str, Any]:
    """The AdmissionReview response for a request body; ReviewError when the body is not a review."""
    request = _request(body)
    uid = request["uid"]
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    patch, warning = _patch_for(request, version)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    if warning:
        response["warnings"] = [warning]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _request(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewError(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ReviewError("the body is not a JSON object")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != "AdmissionReview":
        raise ReviewError(f"expected kind AdmissionReview of {API_VERSION}, got {document.get('kind')!r} "
                          f"of {document.get('apiVersion')!r}")  # fmt: skip
    request = document.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request: expected an object")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise ReviewError("request.uid: expected a non-empty string")
    return request


def _patch_for(request: dict[str, Any], version: str) -> tuple[list[dict[str, Any]], str | None]:
    """The patch for a pod creation (empty when nothing is to be done) and a warning for the user."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or (kind.get("group"), kind.get("kind")) != ("", "Pod"):
        return [], None  # the webhook is registered for pods only; anything else goes through untouched
    if request.get("operation") != "CREATE":
        return [], None
    target = request.get("object")
    if not isinstance(target, dict):
        raise ReviewError("request.object: expected the pod being created")
    meta, spec = target.get("metadata"), target.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        raise ReviewError("request.object: expected a pod with metadata and spec objects")
    if pod.annotations_of(meta).get(k8s.INJECT_ANNOTATION) != pod.ENABLED or pod.is_injected(spec):
        return [], None
    namespace = request.get("namespace") or meta.get("namespace")
    reason = pod.why_not(meta, spec, namespace if isinstance(namespace, str) else None)
    if reason is not None:
        return [], f"meshctl: pod not injected: {reason}"
    after = copy.deepcopy(target)
    pod.inject_manual(after["metadata"], after["spec"], pod.pod_workload(meta), InjectOptions(version, manual=True))
    return make_patch(target, after), None
