"""`meshctl --platform kubernetes check` against a fake API server speaking the real REST protocol.

A healthy cluster of 1,000 meshed pods passes every check; clusters broken on purpose fail the right
code with exit code 1; the number of API requests is the same for 10 pods and for 1,000.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meshctl.cli.app import main
from meshctl.control.ca import generate_issuer, generate_trust_anchor
from tests.fakes.kube_api import FakeKubeApi
from tests.unit.platform.kubernetes.cluster import NS, Cluster, crash_loop, healthy

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "unit" / "platform" / "kubernetes" / "golden"


@pytest.fixture
def fake() -> Iterator[FakeKubeApi]:
    server = FakeKubeApi().start()
    yield server
    server.stop()


def run(
    fake_or_config: FakeKubeApi | Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    config = fake_or_config if isinstance(fake_or_config, Path) else fake_or_config.kubeconfig(tmp_path / "kubeconfig")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(config))
        capsys.readouterr()
        code = main(["--platform", "kubernetes", *args])
    return code, capsys.readouterr().out


def outcomes(text: str) -> dict[str, str]:
    document = json.loads(text)
    assert document["platform"] == "kubernetes"
    return {c["code"]: c["outcome"] for category in document["categories"] for c in category["checks"]}


def check_json(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, str]]:
    code, out = run(fake, tmp_path, capsys, "check", "-o", "json", *args)
    return code, outcomes(out)


def test_healthy_cluster_of_1000_pods_passes_every_check(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 1000)
    code, results = check_json(fake, tmp_path, capsys, "--proxy")
    assert code == 0
    assert {c: o for c, o in results.items() if o != "passed"} == {}
    assert {"MC1101", "MC2102", "MC3100", "MC4009", "MC5101", "MC6003", "MC7101", "MC8004", "MC8101"} <= set(results)


def test_request_count_does_not_grow_with_the_number_of_pods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = []
    for pods in (10, 1000):
        server = FakeKubeApi().start()
        try:
            healthy(server, pods)
            code, _ = check_json(server, tmp_path, capsys, "--proxy")
            assert code == 0
            counts.append(dict(server.requests))
        finally:
            server.stop()
    assert counts[0] == counts[1]
    assert counts[0]["GET /api/v1/pods"] <= 2 and sum(counts[0].values()) <= 20


def test_table_output_of_a_healthy_cluster_is_pinned(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 10)
    code, out = run(fake, tmp_path, capsys, "check", "--proxy")
    assert code == 0
    golden = GOLDEN / "check.table.txt"
    assert out == golden.read_text(encoding="utf-8")


def test_crash_looping_control_plane_fails_mc2102(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 10)
    crash_loop(fake.find("v1", "pods", "meshctl-control-0", NS), "control")
    fake.find("apps/v1", "deployments", "meshctl-control", NS)["status"]["availableReplicas"] = 0
    code, out = run(fake, tmp_path, capsys, "check")
    assert code == 1
    assert "× no control plane pod is unschedulable or crash-looping" in out
    assert "meshctl-system/meshctl-control-0: container control is in CrashLoopBackOff after 7 restarts" in out
    code, results = check_json(fake, tmp_path, capsys)
    assert results["MC2101"] == results["MC2102"] == results["MC2103"] == "failed"


def test_unschedulable_control_plane_pod_fails_mc2102(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 10)
    pod = fake.find("v1", "pods", "meshctl-prometheus-0", NS)
    pod["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}],
    }
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 1 and results["MC2102"] == "failed" and results["MC2103"] == "failed"


def test_missing_crd_fails_mc3100(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    healthy(fake, 10)
    fake.remove("apiextensions.k8s.io/v1", "customresourcedefinitions", "serviceprofiles.meshctl.io")
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 1
    assert results["MC3100"] == "failed" and results["MC3101"] == results["MC3102"] == "skipped"


def test_invalid_service_profile_fails_mc3102(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 10)
    profile = fake.find("meshctl.io/v1alpha1", "serviceprofiles", "books.booksapp.svc.cluster.local", "booksapp")
    profile["spec"]["routes"][0]["timeout"] = "soon"
    code, out = run(fake, tmp_path, capsys, "check")
    assert code == 1
    assert "× the mesh's resources in the cluster are valid" in out
    assert "ServiceProfile booksapp/books.booksapp.svc.cluster.local: spec.routes[0].timeout" in out


def test_expired_issuer_fails_mc4007(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = healthy(fake, 10)
    past = datetime.now(UTC) - timedelta(days=30)
    cluster.set_issuer(generate_issuer(cluster.anchor, lifetime=timedelta(days=10), now=past))
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 1 and results["MC4007"] == "failed" and results["MC4008"] == "skipped"


def test_issuer_expiring_soon_warns_mc4008_and_exits_0(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = healthy(fake, 10)
    cluster.set_issuer(generate_issuer(cluster.anchor, lifetime=timedelta(days=20)))
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 0 and results["MC4008"] == "warned"


def test_issuer_not_signed_by_the_anchor_fails_mc4009(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = healthy(fake, 10)
    cluster.set_issuer(generate_issuer(generate_trust_anchor()))
    code, out = run(fake, tmp_path, capsys, "check")
    assert code == 1
    assert "× the issuer is signed by the trust anchor" in out
    assert "ConfigMap meshctl-system/meshctl-identity-trust-anchors" in out


def test_proxy_with_an_old_version_fails_mc7101_and_mc8102(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = healthy(fake, 10)
    cluster.meshed[3]["metadata"]["annotations"]["meshctl.io/proxy-version"] = "0.0.1"
    code, results = check_json(fake, tmp_path, capsys, "--proxy")
    assert code == 1 and results["MC7101"] == results["MC8102"] == "failed"
    code, out = run(fake, tmp_path, capsys, "check")
    assert "booksapp/traffic-3 runs 0.0.1" in out


def test_proxy_not_ready_fails_mc8101(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = healthy(fake, 10)
    crash_loop(cluster.meshed[5], "meshctl-proxy")
    code, results = check_json(fake, tmp_path, capsys, "--proxy")
    assert code == 1 and results["MC8101"] == "failed"
    code, results = check_json(fake, tmp_path, capsys, "--proxy", "-n", "other")
    assert results["MC8100"] == "failed" and results["MC8101"] == "skipped"


def test_prometheus_not_scraping_fails_mc6003(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster: Cluster = healthy(fake, 10)
    cluster.scraped = False
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 1 and results["MC6003"] == "failed" and results["MC6004"] == "warned"


def test_unreachable_api_server_fails_mc1101(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeKubeApi().start()
    config = server.kubeconfig(tmp_path / "kubeconfig")
    server.stop()  # the port is closed now: connection refused
    code, out = run(config, tmp_path, capsys, "check", "-o", "json")
    results = outcomes(out)
    assert code == 1 and results["MC1101"] == "failed" and results["MC1102"] == "skipped"
    assert all(o == "skipped" for c, o in results.items() if c not in ("MC1100", "MC1101"))


def test_silent_api_server_fails_within_its_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel's backlog) and never answers
    port = listener.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    done: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: done.update(result=run(config, tmp_path, capsys, "check", "-o", "json")))
    thread.start()
    thread.join(60)
    listener.close()
    assert not thread.is_alive(), "meshctl check hung on a silent API server"
    code, out = done["result"]
    assert code == 1 and outcomes(out)["MC1101"] == "failed"


def test_rejected_credentials_fail_mc1102(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 10)
    config = fake.kubeconfig(tmp_path / "kubeconfig")
    config.write_text(config.read_text(encoding="utf-8").replace(fake.token, "stale-token"), encoding="utf-8")
    code, out = run(config, tmp_path, capsys, "check", "-o", "json")
    results = outcomes(out)
    assert code == 1 and results["MC1101"] == "passed" and results["MC1102"] == "failed"


def test_unknown_context_fails_mc1100(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fake.kubeconfig(tmp_path / "kubeconfig")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(config))
        capsys.readouterr()
        code = main(["--platform", "kubernetes", "--context", "nope", "check"])
    out = capsys.readouterr().out
    assert code == 1 and "× the kubeconfig names a usable context" in out and "has no context 'nope'" in out
    assert fake.total_requests() == 0


def test_pre_on_an_empty_cluster_reports_missing_permissions(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.judge = lambda attributes: attributes.get("resource") != "clusterroles"
    code, results = check_json(fake, tmp_path, capsys, "--pre")
    assert code == 1
    assert results["MC1120"] == "passed" and results["MC1122"] == "passed" and results["MC1121"] == "failed"
    fake.judge = lambda attributes: True
    code, results = check_json(fake, tmp_path, capsys, "--pre")
    assert code == 0 and set(results) == {"MC1100", "MC1101", "MC1102", "MC1110", "MC1120", "MC1121", "MC1122"}


def test_old_kubernetes_fails_mc1110(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    healthy(fake, 10)
    fake.version.update(minor="24", gitVersion="v1.24.0")
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 1 and results["MC1110"] == "failed"


def test_a_fresh_prometheus_is_waited_for_until_its_first_scrape(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster: Cluster = healthy(fake, 10)
    cluster.unscraped_answers = 3  # Prometheus has the targets but has not scraped them yet, three times asked
    code, results = check_json(fake, tmp_path, capsys)
    assert code == 0 and results["MC6003"] == "passed"
    cluster.unscraped_answers = 1000  # never scraped: the check gives up after its wait and says why
    code, out = run(fake, tmp_path, capsys, "check")
    assert code == 1
    assert "still waiting for the first scrape after 10s: 10 proxies not scraped:" in out
    assert "booksapp/books-0: not scraped yet" in out


def test_status_lists_the_mesh_pods_of_the_cluster(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy(fake, 3)
    code, out = run(fake, tmp_path, capsys, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Mesh on kubernetes in context fake ({fake.url})"
    assert any(line.split() == ["booksapp", "books-0", "2/2", "running", "0", "ready"] for line in lines)
    assert lines[-1] == "5 of 5 components running"
