"""`status`, `logs`, `diagnostics`, `version`, `log-level`, `routes` and `stat` with `--platform kubernetes`
against the fake API server (the real REST shapes, pods/log and port-forward included). The proxies behind
the port-forwards are real admin servers over real proxy runtimes (tests/fakes/admin_fleet.py)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl.cli.app import main
from tests.fakes.admin_fleet import TOKEN, AdminFleet
from tests.fakes.kube_api import FakeKubeApi, ProxyHandler
from tests.unit.platform.kubernetes.cluster import APP_NS, NS, Cluster, crash_loop, healthy

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "unit" / "platform" / "kubernetes" / "golden"
T0 = 1_795_939_200.0  # 2026-11-29T08:00:00Z


@pytest.fixture
def fake() -> Iterator[FakeKubeApi]:
    server = FakeKubeApi().start()
    yield server
    server.stop()


@pytest.fixture
def cluster(fake: FakeKubeApi) -> Cluster:
    return healthy(fake, 5)  # books-0, authors-1, webapp-2, traffic-3, books-4 in booksapp


@pytest.fixture
def fleet(fake: FakeKubeApi, cluster: Cluster, tmp_path: Path) -> Iterator[AdminFleet]:
    running = AdminFleet(tmp_path, APP_NS, ["books-0", "books-4"])
    for pod, proxy in running.proxies.items():
        fake.forward_to(APP_NS, pod, 4191, proxy.address)
    yield running
    running.close()


def run(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    config = fake.kubeconfig(tmp_path / "kubeconfig")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(config))
        patch.setenv("NO_COLOR", "1")
        capsys.readouterr()
        code = main(["--platform", "kubernetes", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> None:
    """What the error boundary prints: an Error line and a hint line, never a traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    errors = [n for n, line in enumerate(lines) if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[errors[0] + 1].startswith("hint: "), err


def golden(name: str, text: str, fake: FakeKubeApi) -> None:
    """Compare with golden/<name>; MESHCTL_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    text = text.replace(fake.url, "http://FAKE")
    if os.environ.get("MESHCTL_UPDATE_GOLDEN") == "1":
        (GOLDEN / name).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / name).read_text(encoding="utf-8"), f"MESHCTL_UPDATE_GOLDEN=1 rewrites golden/{name}"


# --- status ------------------------------------------------------------------------------------------------


def test_status_shows_the_control_plane_and_every_meshed_pod(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(fake, tmp_path, capsys, "status")
    assert code == 0
    golden("status.table.txt", out, fake)
    code, out, _ = run(fake, tmp_path, capsys, "status", "-o", "wide")
    assert code == 0
    golden("status.wide.txt", out, fake)
    code, out, _ = run(fake, tmp_path, capsys, "status", "-o", "json")
    assert code == 0
    golden("status.json", out, fake)
    assert fake.requests["GET /api/v1/pods"] == 3  # one listing per call, whatever the number of pods


def test_status_exits_1_and_names_the_pod_that_is_not_running(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crash_loop(fake.find("v1", "pods", "books-4", APP_NS), "meshctl-proxy")
    code, out, err = run(fake, tmp_path, capsys, "status", "-n", APP_NS, "-o", "wide")
    assert code == 1
    assert re.search(r"booksapp\s+books-4\s+1/2\s+degraded\s+7\s+10\.1\.0\.5:4191", out), out
    assert "meshctl-control      1/1     0.1.0" in out
    one_line_error(err)
    assert "books-4" in err and "meshctl logs pod/books-4" in err


# --- logs --------------------------------------------------------------------------------------------------


def write_logs(fake: FakeKubeApi) -> None:
    for n in range(3):
        fake.write_log(APP_NS, "books-0", "meshctl-proxy", f"INFO books-0 proxy {n}", T0 + 2 * n)
        fake.write_log(APP_NS, "books-4", "meshctl-proxy", f"INFO books-4 proxy {n}", T0 + 2 * n + 1)
        fake.write_log(APP_NS, "books-0", "books", f"GET /books {n}", T0 + n)
    fake.write_log(NS, "meshctl-control-0", "control", "control plane serving", T0)


def test_logs_of_every_instance_merged_in_time_order(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_logs(fake)
    code, out, err = run(fake, tmp_path, capsys, "logs", "deploy/books", "-n", APP_NS)
    assert code == 0, err
    golden("logs.proxy.txt", out, fake)
    code, out, _ = run(fake, tmp_path, capsys, "logs", "deploy/books", "-n", APP_NS, "-o", "json")
    assert code == 0
    golden("logs.proxy.json", out, fake)
    assert fake.requests[f"GET /api/v1/namespaces/{APP_NS}/pods/books-0/log"] == 2


def test_logs_of_the_app_container_and_of_the_control_plane(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_logs(fake)
    code, out, _ = run(fake, tmp_path, capsys, "logs", "pod/books-0", "-n", APP_NS, "--app", "--tail", "2")
    assert code == 0 and out == "books-0  GET /books 1\nbooks-0  GET /books 2\n"
    code, out, _ = run(fake, tmp_path, capsys, "logs", "--control")
    assert code == 0 and out == "meshctl-control-0  control plane serving\n"
    now = time.time()
    fake.write_log(APP_NS, "books-0", "meshctl-proxy", "INFO fresh", now)
    code, out, _ = run(fake, tmp_path, capsys, "logs", "pod/books-0", "-n", APP_NS, "--since", "1m")
    assert code == 0 and out == "books-0  INFO fresh\n"


def test_a_container_the_api_refuses_is_named_and_the_others_still_print(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_logs(fake)
    pod = fake.find("v1", "pods", "books-4", APP_NS)
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    code, out, err = run(fake, tmp_path, capsys, "logs", "deploy/books", "-n", APP_NS, "--app")
    assert code == 1
    assert out == "books-0  GET /books 0\nbooks-0  GET /books 1\nbooks-0  GET /books 2\n"
    assert 'logs: books-4: booksapp/books-4 (books): container "books" in pod "books-4" is waiting to start: ' \
           "ContainerCreating" in err  # fmt: skip
    one_line_error(err)


def test_logs_follow_streams_new_lines_until_every_container_ends(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_logs(fake)

    def later() -> None:
        time.sleep(1.5)
        fake.write_log(APP_NS, "books-4", "meshctl-proxy", "INFO books-4 later", time.time())
        fake.write_log(APP_NS, "books-0", "meshctl-proxy", "INFO books-0 later", time.time() + 0.001)
        time.sleep(0.5)
        fake.end_log(APP_NS, "books-0", "meshctl-proxy")
        fake.end_log(APP_NS, "books-4", "meshctl-proxy")

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    code, out, _ = run(fake, tmp_path, capsys, "logs", "deploy/books", "-n", APP_NS, "-f", "--tail", "1")
    assert code == 0 and time.monotonic() - started < 20
    assert out.splitlines() == ["books-0  INFO books-0 proxy 2", "books-4  INFO books-4 proxy 2",
                                "books-4  INFO books-4 later", "books-0  INFO books-0 later"]  # fmt: skip


def test_closing_a_followed_pod_log_ends_it_at_once(fake: FakeKubeApi, cluster: Cluster, tmp_path: Path) -> None:
    from meshctl.platform.kubernetes.api import connect
    from meshctl.platform.kubernetes.logs import PodLogStream
    from meshctl.platform.kubernetes.pods import parse_pod
    from meshctl.platform.logs import LogQuery

    api = connect(None, str(fake.kubeconfig(tmp_path / "kubeconfig")))
    fake.write_log(APP_NS, "books-0", "meshctl-proxy", "first", T0)
    pod = parse_pod(fake.find("v1", "pods", "books-0", APP_NS))
    stream = PodLogStream(api, pod, "meshctl-proxy", LogQuery(follow=True))
    seen: list[str] = []
    ended = threading.Event()

    def read() -> None:
        seen.extend(line.text for line in stream.lines())  # no exception: a closed follow just ends
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    stream.close()  # what Ctrl-C does; the container keeps running
    assert ended.wait(5) and seen == ["first"]


# --- diagnostics, version, log-level through the port-forward --------------------------------------------------


def test_diagnostics_proxy_metrics_of_each_instance(
    fake: FakeKubeApi, fleet: AdminFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(fake, tmp_path, capsys, "diagnostics", "proxy-metrics", "deploy/books", "-n", APP_NS)
    assert code == 0, err
    parts = re.split(r"^# instance (\S+)\n", out, flags=re.MULTILINE)
    assert parts[0] == "" and parts[1::2] == ["booksapp/books-0", "booksapp/books-4"]
    assert all('proxy_build_info{version="0.1.0"} 1' in metrics for metrics in parts[2::2])
    fake.pod_ports.pop((APP_NS, "books-4", 4191))  # nothing listens there any more
    code, out, err = run(fake, tmp_path, capsys, "diagnostics", "proxy-metrics", "deploy/books", "-n", APP_NS)
    assert code == 1 and "# instance booksapp/books-0" in out and "books-4" not in out
    assert "diagnostics: booksapp/books-4: " in err
    one_line_error(err)


def test_diagnostics_config_shows_listeners_routes_endpoints_and_no_secret(
    fake: FakeKubeApi, fleet: AdminFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(fake, tmp_path, capsys, "diagnostics", "config", "pod/books-0", "-n", APP_NS)
    assert code == 0, err
    not_after = fleet.proxies["books-0"].runtime.tls.not_after.isoformat()  # type: ignore[union-attr]
    golden("diagnostics.config.txt", out.replace(not_after, "NOT_AFTER"), fake)
    code, out, _ = run(fake, tmp_path, capsys, "diagnostics", "config", "deploy/books", "-n", APP_NS, "-o", "json")
    assert code == 0
    proxies = json.loads(out)["proxies"]
    assert [(p["instance"], p["error"]) for p in proxies] == [("books-0", None), ("books-4", None)]
    assert proxies[0]["config"]["routes"]["books.booksapp.svc.cluster.local:7002"][0]["name"] == "GET /books/{id}"
    assert TOKEN not in out and "PRIVATE KEY" not in out and "BEGIN" not in out


def test_version_of_client_control_plane_and_proxies(
    fake: FakeKubeApi, fleet: AdminFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(fake, tmp_path, capsys, "version", "-n", APP_NS)
    # authors-1, webapp-2 and traffic-3 have no admin server behind their port-forward
    assert code == 1
    assert out.splitlines()[:2] == ["Client version: 0.1.0", "Control plane version: 0.1.0"]
    assert out.splitlines()[2] == "Proxy versions: 2 proxies at 0.1.0, 3 not answering (authors-1, webapp-2, traffic-3)"
    for pod in ("authors-1", "webapp-2", "traffic-3"):
        fake.remove("v1", "pods", pod, APP_NS)
    code, out, _ = run(fake, tmp_path, capsys, "version")
    assert code == 0
    golden("version.txt", out, fake)
    code, out, _ = run(fake, tmp_path, capsys, "version", "-o", "json")
    assert code == 0
    golden("version.json", out, fake)
    document = json.loads(out)
    assert document["control_plane"] == {"version": "0.1.0", "error": None}
    assert [(p["instance"], p["version"]) for p in document["proxies"]] == [("books-0", "0.1.0"), ("books-4", "0.1.0")]


def test_version_without_a_control_plane_still_prints_the_client(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.remove("apps/v1", "deployments", "meshctl-control", NS)
    code, out, err = run(fake, tmp_path, capsys, "version")
    assert code == 3
    assert out.startswith("Client version: 0.1.0\nControl plane version: unavailable (no deployment meshctl-control")
    one_line_error(err)
    assert "meshctl install" in err


def test_log_level_through_the_port_forward(
    fake: FakeKubeApi, fleet: AdminFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(fake, tmp_path, capsys, "log-level", "deploy/books", "-n", APP_NS, "debug")
    assert code == 0, err
    assert out == "books-0: info → debug\nbooks-4: info → debug\n"
    assert {p.level.current for p in fleet.proxies.values()} == {"debug"}
    code, out, _ = run(fake, tmp_path, capsys, "log-level", "pod/books-4", "-n", APP_NS, "--reset")
    assert code == 0 and out == "books-4: debug → info\n"


# --- routes and stat through the service proxy to Prometheus -----------------------------------------------------

TARGET = {"labels": {"namespace": APP_NS, "pod": "books-0"}, "scrapeInterval": "10s", "health": "up"}
TARGETS = json.dumps({"status": "success", "data": {"activeTargets": [TARGET]}}).encode()


def prometheus_answering(query_answer: tuple[int, bytes]) -> ProxyHandler:
    def handler(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if path == "/api/v1/targets":
            return 200, TARGETS
        if path == "/api/v1/query":
            return query_answer
        return 404, b"404 page not found\n"

    return handler


def test_routes_and_stat_reach_prometheus_through_the_api_server(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
    fake.proxies[(NS, "meshctl-prometheus", "9090")] = prometheus_answering((200, empty))
    code, out, err = run(fake, tmp_path, capsys, "routes", "deploy/books", "-n", APP_NS, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["target"] == "deploy/books"
    code, out, err = run(fake, tmp_path, capsys, "stat", "deploy", "-n", APP_NS)
    assert code == 0, err
    path = f"GET /api/v1/namespaces/{NS}/services/meshctl-prometheus:9090/proxy/api/v1/query"
    assert fake.requests[path] >= 2


@pytest.mark.parametrize(("answer", "why"), [
    ((200, b"<html><body>Sign in to continue</body></html>"), "its answer is not JSON"),
    ((200, b'{"status": "success", "data": {"resultType": "vector", "result": "garbage"}}'), "not a vector"),
    ((200, b'{"status": "success", "data": {"result": [{"metric": {}, "value": [1, "x"]}]}}'), "a sample is not"),
    ((200, b'{"status": "success", "data": {"result": [["not", "an", "object"]]}}'), "a sample is not"),
    ((200, b'{"unexpected": true}'), "does not answer like a Prometheus API"),
    ((502, b"Bad Gateway"), "no answer after a retry"),
])  # fmt: skip
def test_a_malformed_prometheus_answer_is_one_line_with_a_hint(
    answer: tuple[int, bytes], why: str, fake: FakeKubeApi, cluster: Cluster, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    fake.proxies[(NS, "meshctl-prometheus", "9090")] = prometheus_answering(answer)
    for command in (["routes", "deploy/books"], ["stat", "deploy"]):
        code, out, err = run(fake, tmp_path, capsys, *command, "-n", APP_NS)
        assert code == 3 and out == "", err
        one_line_error(err)
        assert why in err and "--prometheus-url" in err


# --- the fake's pods/log answers, as the API server gives them -----------------------------------------------


def test_the_fake_refuses_log_requests_as_the_api_server_does(
    fake: FakeKubeApi, cluster: Cluster, tmp_path: Path
) -> None:
    from meshctl.platform.kubernetes.api import KubeError, connect

    api = connect(None, str(fake.kubeconfig(tmp_path / "kubeconfig")))
    path = f"/api/v1/namespaces/{APP_NS}/pods/books-0/log"
    refusals = {
        "no container": (path, {}),
        "unknown container": (path, {"container": "nginx"}),
        "no pod": (f"/api/v1/namespaces/{APP_NS}/pods/books-9/log", {"container": "books"}),
        "bad tail": (path, {"container": "books", "tailLines": "-1"}),
    }
    answers = {}
    for name, (where, query) in refusals.items():
        with pytest.raises(KubeError) as refused:
            api.stream(where, query)
        answers[name] = (refused.value.status, refused.value.message.split(": ", 1)[1])
    assert answers == {
        "no container": (400, "400 a container name must be specified for pod books-0, choose one of: [books "
                              "meshctl-proxy]"),
        "unknown container": (400, "400 container nginx is not valid for pod books-0"),
        "no pod": (404, '404 pods "books-9" not found'),
        "bad tail": (422, '422 PodLogOptions "books-0" is invalid: tailLines: Invalid value: -1: must be greater than '
                          "or equal to 0"),
    }  # fmt: skip
    fake.write_log(APP_NS, "books-0", "books", "plain", T0 + 0.5)
    response = api.stream(path, {"container": "books"})
    assert response.headers["Content-Type"] == "text/plain" and response.read() == b"plain\n"
    response = api.stream(path, {"container": "books", "timestamps": "true"})
    assert response.read() == b"2026-11-29T08:00:00.500000000Z plain\n"
