"""`meshctl install`: its manifests pass Kubernetes' own schemas (kubernetes-validate, offline), carry the
kinds' schemas themselves, and fit together: the control plane reads the config and identity they mount,
the injector's certificate verifies against the webhook's caBundle in a real TLS handshake.

The golden file holds the whole output with certificates normalised; after a deliberate change,
regenerate it with `python -m tests.unit.platform.kubernetes.test_install` and review the diff.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshctl.cli.context import OutputFormat
from meshctl.cli.install import manifests, render_text
from meshctl.platform.kubernetes import conventions
from meshctl.platform.kubernetes.manifests.pki import INJECTOR_DNS_NAME
from meshctl.resources import KINDS

GOLDEN = Path(__file__).parent / "golden" / "install.yaml"
# The oldest Kubernetes the mesh supports: its schemas are the strictest test of what we render.
KUBERNETES_VERSION = "{}.{}.0".format(*conventions.MIN_KUBERNETES)

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", re.S)
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]+")  # base64 of "-----BEGIN"


def normalise(text: str) -> str:
    """Certificates and keys are new on every run: the golden file holds placeholders."""
    text = _BASE64_PEM.sub("<base64 PEM>", text)
    return _PEM.sub(lambda m: f"<{m.group(1)}>\n", text)


def _everything() -> list[dict[str, Any]]:
    return manifests(crds_only=False, control_plane_only=False)


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return _everything()


def _one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_output_matches_the_golden_file(everything: list[dict[str, Any]]) -> None:
    assert normalise(render_text(everything, OutputFormat.YAML)) == GOLDEN.read_text(), (
        "install output changed: run `python -m tests.unit.platform.kubernetes.test_install` and review the diff"
    )


def test_every_document_passes_kubernetes_validate(everything: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    for document in everything:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises with the field path


def test_kubernetes_validate_catches_a_broken_document(everything: list[dict[str, Any]]) -> None:
    """The check above can fail: a field Kubernetes does not know is refused in strict mode."""
    import kubernetes_validate

    deployment = json.loads(json.dumps(_one(everything, "Deployment", conventions.CONTROL_DEPLOYMENT)))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_one_crd_per_kind_carrying_the_kind_schema_itself(everything: list[dict[str, Any]]) -> None:
    crds = [d for d in everything if d["kind"] == "CustomResourceDefinition"]
    assert [d["metadata"]["name"] for d in crds] == list(conventions.CRDS)
    for crd in crds:
        spec = crd["spec"]
        definition = KINDS[spec["names"]["kind"]]
        (version,) = spec["versions"]
        assert f"{spec['group']}/{version['name']}" == definition.api_version
        assert conventions.CRD_VERSIONS[crd["metadata"]["name"]] == version["name"]
        assert version["served"] and version["storage"]
        assert spec["names"]["plural"] == definition.plural and spec["scope"] == "Namespaced"
        assert version["schema"]["openAPIV3Schema"]["properties"]["spec"] is definition.spec_schema


def test_crds_only_and_control_plane_only_split_the_whole(everything: list[dict[str, Any]]) -> None:
    crds = manifests(crds_only=True, control_plane_only=False)
    rest = manifests(crds_only=False, control_plane_only=True)
    assert {d["kind"] for d in crds} == {"CustomResourceDefinition"}
    assert "CustomResourceDefinition" not in {d["kind"] for d in rest}
    names = [(d["kind"], d["metadata"]["name"]) for d in everything]
    assert sorted(names) == sorted((d["kind"], d["metadata"]["name"]) for d in crds + rest)


def test_the_control_plane_reads_what_the_manifests_mount(everything: list[dict[str, Any]], tmp_path: Path) -> None:
    """config.json parses as the control plane's config, and the identity volume, laid out as the kubelet
    would project it, is what the CA loads."""
    from meshctl.control.ca import load_issuer
    from meshctl.control.config import parse_control_config

    config_map = _one(everything, "ConfigMap", conventions.CONFIG_MAP)
    raw = json.loads(config_map["data"][conventions.CONFIG_KEY])
    config = parse_control_config(raw)
    deployment = _one(everything, "Deployment", conventions.CONTROL_DEPLOYMENT)
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["identity"] == raw["identity_dir"]
    assert pod["containers"][0]["command"][-1] == f"{mounts['config']}/{conventions.CONFIG_KEY}"
    sources: dict[str, dict[str, str]] = {
        "configMap": _one(everything, "ConfigMap", conventions.ANCHORS_CONFIG_MAP)["data"],
        "secret": {k: base64.b64decode(v).decode()
                   for k, v in _one(everything, "Secret", conventions.ISSUER_SECRET)["data"].items()},
    }  # fmt: skip
    (volume,) = [v for v in pod["volumes"] if v["name"] == "identity"]
    for source in volume["projected"]["sources"]:
        ((kind, ref),) = source.items()
        for entry in ref["items"]:
            (tmp_path / entry["path"]).write_text(sources[kind][entry["key"]])
    issuer, anchors = load_issuer(tmp_path)
    assert issuer.cert.issuer == anchors[0].subject
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert (ports["grpc"], ports["admin"]) == (config.listen.port, config.admin.port)


def test_the_injector_certificate_verifies_against_the_webhook_ca_bundle(
    everything: list[dict[str, Any]], tmp_path: Path
) -> None:
    webhook = _one(everything, "MutatingWebhookConfiguration", conventions.INJECTOR_WEBHOOK)["webhooks"][0]
    client = webhook["clientConfig"]
    assert client["service"] == {"name": conventions.INJECTOR_SERVICE, "namespace": conventions.CONTROL_NS,
                                 "path": conventions.INJECTOR_PATH, "port": conventions.INJECTOR_PORT}  # fmt: skip
    assert webhook["failurePolicy"] == "Ignore" and webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    service = _one(everything, "Service", conventions.INJECTOR_SERVICE)
    assert {"name": "webhook", "port": conventions.INJECTOR_PORT, "targetPort": "webhook", "protocol": "TCP"} in (
        service["spec"]["ports"]
    )
    secret = _one(everything, "Secret", conventions.INJECTOR_TLS_SECRET)["data"]
    for key in ("tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret[key]))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_context = ssl.create_default_context(cadata=base64.b64decode(client["caBundle"]).decode())
    _handshake(server, client_context, INJECTOR_DNS_NAME)
    with pytest.raises(ssl.SSLCertVerificationError):  # and only for its own name
        _handshake(server, client_context, "meshctl-control.default.svc")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def accept() -> None:
        connection, _ = listener.accept()
        try:
            with server.wrap_socket(connection, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, client.wrap_socket(
            raw, server_hostname=name
        ):
            pass
    finally:
        thread.join(10)
        listener.close()


def _relabel(rules: list[dict[str, Any]], meta: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep and replace, regexes anchored), enough for the rules we render."""
    import re2

    labels = dict(meta)
    for rule in rules:
        value = ";".join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re2.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if match is None:
                return None
        elif match is not None:
            labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$1", r"\1"))
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def test_scrape_config_gives_targets_the_labels_stat_and_routes_query(everything: list[dict[str, Any]]) -> None:
    config = yaml.safe_load(_one(everything, "ConfigMap", "meshctl-prometheus-config")["data"]["prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    proxy_pod = {
        "__meta_kubernetes_namespace": "booksapp",
        "__meta_kubernetes_pod_name": "books-5d8f7c9b4-x2x9q",
        "__meta_kubernetes_pod_controller_kind": "ReplicaSet",
        "__meta_kubernetes_pod_controller_name": "books-5d8f7c9b4",
        "__meta_kubernetes_pod_container_name": conventions.PROXY_CONTAINER,
        "__meta_kubernetes_pod_container_port_number": str(conventions.PROXY_ADMIN_PORT),
    }
    assert _relabel(jobs["meshctl-proxy"]["relabel_configs"], proxy_pod) == {
        "namespace": "booksapp", "pod": "books-5d8f7c9b4-x2x9q", "deployment": "books", "component": "proxy"
    }  # fmt: skip
    app_port = proxy_pod | {"__meta_kubernetes_pod_container_name": "books"}
    assert _relabel(jobs["meshctl-proxy"]["relabel_configs"], app_port) is None
    control_pod = proxy_pod | {
        "__meta_kubernetes_namespace": conventions.CONTROL_NS,
        "__meta_kubernetes_pod_name": "meshctl-control-7c9d-abcde",
        "__meta_kubernetes_pod_controller_name": "meshctl-control-7c9d",
        "__meta_kubernetes_pod_label_meshctl_io_control_plane_component": "control",
        "__meta_kubernetes_pod_container_port_name": "admin",
    }
    assert _relabel(jobs["meshctl-control"]["relabel_configs"], control_pod) == {
        "namespace": conventions.CONTROL_NS, "pod": "meshctl-control-7c9d-abcde", "deployment": "meshctl-control",
        "component": "control-plane",
    }  # fmt: skip


def test_promtool_accepts_the_scrape_config(everything: list[dict[str, Any]], tmp_path: Path) -> None:
    """Prometheus' own parser on the config: relabel actions, regexes, label names. Debian builds it without
    Kubernetes discovery, so pod discovery is swapped for a static target; the rest is checked as written."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `bash .ci/setup` (Debian package `prometheus`)"
    config = yaml.safe_load(_one(everything, "ConfigMap", "meshctl-prometheus-config")["data"]["prometheus.yml"])
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:4191"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _meshctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, timeout=60)


def test_json_output_is_a_list_of_the_same_objects() -> None:
    done = _meshctl("install", "--crds", "-o", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert listed["items"] == json.loads(json.dumps(manifests(crds_only=True, control_plane_only=False)))


def test_yaml_output_reads_back_as_the_same_objects(everything: list[dict[str, Any]]) -> None:
    text = render_text(everything, OutputFormat.YAML)
    assert list(yaml.safe_load_all(text)) == json.loads(json.dumps(everything))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crds", "--control-plane"], "--crds and --control-plane exclude each other"),
        (["--identity-trust-anchors-file", "ca.crt"],
         "--identity-issuer-certificate-file and --identity-issuer-key-file missing"),
        (["-o", "wide"], "prints yaml or json, not -o wide"),
    ],
)  # fmt: skip
def test_usage_mistakes_are_one_line_with_a_hint(args: list[str], message: str) -> None:
    done = _meshctl("install", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr and "hint:" in done.stderr and "Traceback" not in done.stderr


if __name__ == "__main__":
    GOLDEN.write_text(normalise(render_text(_everything(), OutputFormat.YAML)))
