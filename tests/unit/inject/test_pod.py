"""The pod mutation: what the injected proxy is given (and that the proxy accepts it), modes, refusals."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any

import pytest

from meshctl.identity import control_plane_identity, workload_identity
from meshctl.inject import pod
from meshctl.inject.pod import InjectOptions
from meshctl.inject.redirect import redirect_rules
from meshctl.platform.kubernetes import conventions as k8s
from meshctl.proxy.config import load_proxy_config_env

MANUAL = InjectOptions("1.2.3", manual=True)
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def books(**spec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    meta: dict[str, Any] = {"labels": {"app": "books"}}
    base: dict[str, Any] = {
        "serviceAccountName": "books",
        "containers": [{"name": "books", "image": "books:1", "ports": [{"name": "http", "containerPort": 7002}]}],
    }
    return meta, base | spec


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1, name
    return dict(found[0])


def kubelet_environment(env: list[dict[str, Any]], fields: dict[str, str]) -> dict[str, str]:
    """What the container's process sees: fieldRef values, and `$(VAR)` expanded from earlier variables
    (an unknown reference stays as written), as the kubelet does it."""
    out: dict[str, str] = {}
    for entry in env:
        if "valueFrom" in entry:
            out[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            out[entry["name"]] = REFERENCE.sub(lambda m: out.get(m[1], m[0]), entry["value"])
    return out


def test_the_injected_proxy_gets_a_config_the_proxy_accepts() -> None:
    meta, spec = books()
    assert pod.inject(meta, spec, "books", MANUAL)
    proxy = container(spec, k8s.PROXY_CONTAINER)
    assert proxy["command"][-2:] == ["--config-env", k8s.PROXY_CONFIG_ENV]
    fields = {"metadata.name": "books-7d9f-x2x4q", "metadata.namespace": "booksapp", "spec.serviceAccountName": "books"}
    config = load_proxy_config_env(k8s.PROXY_CONFIG_ENV, kubelet_environment(proxy["env"], fields))
    assert (config.pod, config.namespace, config.deployment) == ("books-7d9f-x2x4q", "booksapp", "books")
    assert config.identity == workload_identity("books", "booksapp")
    assert config.inbound is not None and config.outbound is not None and config.tap is not None
    assert (config.inbound.listen.port, str(config.inbound.app)) == (k8s.PROXY_INBOUND_PORT, "127.0.0.1:7002")
    assert config.inbound.app_protocol == "http"
    assert config.outbound.listen.port == k8s.PROXY_OUTBOUND_PORT
    assert (config.admin.listen.port, config.tap.listen.port) == (k8s.PROXY_ADMIN_PORT, k8s.PROXY_TAP_PORT)
    assert config.control.address == k8s.CONTROL_ADDRESS == "meshctl-control.meshctl-system.svc.cluster.local:8086"
    assert config.control.identity == control_plane_identity()
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert config.token_file.startswith(mounts[k8s.TOKEN_VOLUME] + "/")
    assert config.trust_anchors == f"{mounts[k8s.ANCHORS_VOLUME]}/{k8s.ANCHORS_KEY}"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[k8s.ANCHORS_VOLUME]["configMap"]["name"] == k8s.ANCHORS_CONFIG_MAP
    token = volumes[k8s.TOKEN_VOLUME]["projected"]["sources"][0]["serviceAccountToken"]
    assert config.token_file == f"{k8s.TOKEN_DIR}/{token['path']}"


def test_the_proxy_refuses_a_missing_config_variable_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshctl.proxy", "--config-env", "MESHCTL_TEST_NO_SUCH_VARIABLE"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "MESHCTL_TEST_NO_SUCH_VARIABLE" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_pod_without_ports_gets_an_outbound_only_proxy_and_no_inbound_redirect() -> None:
    meta, spec = books(containers=[{"name": "worker", "image": "worker:1"}])
    pod.inject(meta, spec, "worker", MANUAL)
    proxy = container(spec, k8s.PROXY_CONTAINER)
    fields = {"metadata.name": "w", "metadata.namespace": "jobs", "spec.serviceAccountName": "default"}
    config = load_proxy_config_env(k8s.PROXY_CONFIG_ENV, kubelet_environment(proxy["env"], fields))
    assert config.inbound is None and config.outbound is not None
    script = container(spec, k8s.INIT_CONTAINER)["args"][0]
    assert "PREROUTING" not in script and "--to-ports 4140" in script


def test_the_init_rules_send_the_app_port_to_the_proxy_and_spare_the_proxy_itself() -> None:
    rules = [" ".join(rule) for rule in redirect_rules(7002)]
    assert f"--dport 7002 -j REDIRECT --to-ports {k8s.PROXY_INBOUND_PORT}" in rules[1]
    owner = next(i for i, r in enumerate(rules) if f"--uid-owner {k8s.PROXY_UID} -j RETURN" in r)
    catch_all = next(i for i, r in enumerate(rules) if f"--to-ports {k8s.PROXY_OUTBOUND_PORT}" in r)
    assert owner < catch_all  # the proxy's own connections leave before the redirect
    meta, spec = books()
    pod.inject(meta, spec, "books", MANUAL)
    assert container(spec, k8s.PROXY_CONTAINER)["securityContext"]["runAsUser"] == k8s.PROXY_UID


def test_grpc_is_told_by_the_port_name() -> None:
    meta, spec = books(containers=[{"name": "api", "ports": [{"name": "grpc-api", "containerPort": 9000}]}])
    pod.inject(meta, spec, "api", MANUAL)
    env = kubelet_environment(container(spec, k8s.PROXY_CONTAINER)["env"], dict.fromkeys(
        ("metadata.name", "metadata.namespace", "spec.serviceAccountName"), "x"))  # fmt: skip
    config = load_proxy_config_env(k8s.PROXY_CONFIG_ENV, env)
    assert config.inbound is not None and config.inbound.app_protocol == "grpc"


def test_the_debug_sidecar_comes_from_the_flag_or_the_pods_annotation() -> None:
    meta, spec = books()
    pod.inject(meta, spec, "books", InjectOptions("1.2.3", manual=True, debug_sidecar=True))
    debug = container(spec, k8s.DEBUG_CONTAINER)
    assert set(debug["securityContext"]["capabilities"]["add"]) >= {"NET_ADMIN", "NET_RAW"}
    assert debug["image"] == f"{k8s.DEBUG_IMAGE_REPOSITORY}:1.2.3"
    meta, spec = books()
    meta["annotations"] = {k8s.DEBUG_SIDECAR_ANNOTATION: "enabled"}
    pod.inject(meta, spec, "books", MANUAL)
    container(spec, k8s.DEBUG_CONTAINER)


def test_asking_for_the_debug_sidecar_later_adds_only_it() -> None:
    meta, spec = books()
    pod.inject(meta, spec, "books", MANUAL)
    before = copy.deepcopy(spec)
    assert pod.inject(meta, spec, "books", InjectOptions("1.2.3", manual=True, debug_sidecar=True))
    assert spec["containers"][:-1] == before["containers"] and spec["containers"][-1]["name"] == k8s.DEBUG_CONTAINER
    assert spec["initContainers"] == before["initContainers"] and spec["volumes"] == before["volumes"]


def test_annotation_mode_leaves_a_manually_injected_pod_alone() -> None:
    meta, spec = books()
    pod.inject(meta, spec, "books", MANUAL)
    assert not pod.inject(meta, spec, "books", InjectOptions("1.2.3"))
    assert k8s.INJECT_ANNOTATION not in meta["annotations"]


def test_manual_injection_marks_the_pod_as_meshed() -> None:
    meta, spec = books()
    pod.inject(meta, spec, "books", MANUAL)
    assert meta["labels"][k8s.MESH_LABEL] == k8s.CONTROL_NS
    assert meta["annotations"][k8s.PROXY_VERSION_ANNOTATION] == "1.2.3"
    assert [c["name"] for c in spec["containers"]] == [k8s.PROXY_CONTAINER, "books"]
    assert [c["name"] for c in spec["initContainers"]] == [k8s.INIT_CONTAINER]


@pytest.mark.parametrize(
    ("namespace", "change", "reason"),
    [
        ("kube-system", {}, "namespace kube-system is never meshed"),
        ("booksapp", {"hostNetwork": True}, "hostNetwork"),
        ("booksapp", {"containers": []}, "no containers"),
        ("booksapp", {"containers": [{"name": "x", "ports": [{"containerPort": 4143}]}]}, "port 4143"),
    ],
)
def test_what_cannot_be_injected_says_why(namespace: str, change: dict[str, Any], reason: str) -> None:
    meta, spec = books(**change)
    found = pod.why_not(meta, spec, namespace)
    assert found is not None and reason in found
    assert pod.why_not(*books(), "booksapp") is None


def test_an_opted_out_pod_is_refused_and_keeps_its_opt_out_through_uninject() -> None:
    meta, spec = books()
    meta["annotations"] = {k8s.INJECT_ANNOTATION: "disabled"}
    assert pod.why_not(meta, spec, "booksapp") is not None
    assert not pod.uninject(meta, spec)
    assert meta["annotations"] == {k8s.INJECT_ANNOTATION: "disabled"}


@pytest.mark.parametrize(
    ("meta", "workload"),
    [
        ({"generateName": "books-5d8f7c6b9-", "labels": {"pod-template-hash": "5d8f7c6b9"},
          "ownerReferences": [{"kind": "ReplicaSet", "name": "books-5d8f7c6b9"}]}, "books"),
        ({"name": "ledger-0", "ownerReferences": [{"kind": "StatefulSet", "name": "ledger"}]}, "ledger"),
        ({"name": "debug-me"}, "debug-me"),
        ({"generateName": "scratch-"}, "scratch"),
        ({}, f"$({k8s.POD_NAME_ENV})"),
    ],
)  # fmt: skip
def test_a_pods_workload_is_named_as_meshctl_names_deployments(meta: dict[str, Any], workload: str) -> None:
    assert pod.pod_workload(meta) == workload
