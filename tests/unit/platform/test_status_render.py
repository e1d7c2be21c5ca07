"""`meshctl status`: the JSON keys scripts rely on, the table, and what counts as running."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from meshctl.cli.context import CliContext, PlatformName
from meshctl.cli.local import render_table, status_json
from meshctl.errors import ConfigError, ExitCode, UnreachableError
from meshctl.platform.base import (
    ComponentStatus,
    MeshStatus,
    ProcessStatus,
    ProxyInfo,
    open_platform,
    select,
)
from meshctl.platform.local import state
from meshctl.platform.local.platform import LocalPlatform
from meshctl.platform.local.processes import spawn
from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord
from meshctl.targets import Kind, Target


def component(name: str, kind: str, alive: tuple[bool, ...], ready: bool | None) -> ComponentStatus:
    return ComponentStatus(
        name=name,
        kind=kind,
        namespace="booksapp",
        deployment=name.rsplit("-", 1)[0],
        pod=name,
        addresses={"app": "127.77.3.1:7002", "admin": "127.77.3.1:4191"},
        processes=tuple(ProcessStatus("proxy", 100 + i, a, None) for i, a in enumerate(alive)),
        ready=ready,
        detail="" if all(alive) and ready is not False else "something",
    )


def mesh(*components: ComponentStatus) -> MeshStatus:
    return MeshStatus(
        platform="local",
        location="/home/x/.meshctl",
        started_at="2026-01-02T03:04:05Z",
        urls={"ingress": "http://127.77.0.4:8080", "prometheus": "http://127.77.0.3:9090"},
        components=components,
        extra={"state": "running", "subnet": "127.77.0.0/16"},
    )


def test_running_means_every_process_alive_and_ready() -> None:
    assert component("books-0", "workload", (True, True), True).state == "running"
    assert component("books-0", "workload", (True, True), False).state == "not ready"
    assert component("books-0", "workload", (True, False), None).state == "degraded"
    assert component("books-0", "workload", (False, False), None).state == "down"
    assert component("traffic-0", "traffic", (True,), None).running  # nothing to probe: alive is enough


def test_exit_code_follows_the_components() -> None:
    assert mesh(component("a-0", "workload", (True,), True)).exit_code is ExitCode.OK
    assert mesh(component("a-0", "workload", (False,), None)).exit_code is ExitCode.FAILED
    assert mesh().exit_code is ExitCode.FAILED


def test_json_has_stable_keys_and_numbers() -> None:
    data = status_json(mesh(component("books-0", "workload", (True, True), True)))
    assert list(data) == [
        "platform",
        "home",
        "state",
        "subnet",
        "started_at",
        "all_running",
        "urls",
        "components",
    ]
    components = cast(list[dict[str, Any]], data["components"])
    (entry,) = components
    assert list(entry) == [
        "name",
        "kind",
        "namespace",
        "deployment",
        "pod",
        "status",
        "running",
        "ready",
        "addresses",
        "processes",
        "detail",
    ]
    assert entry["processes"][0] == {"role": "proxy", "pid": 100, "alive": True, "log": None}
    assert json.loads(json.dumps(data)) == data


def test_table_lists_components_and_what_is_wrong() -> None:
    text = render_table(
        mesh(
            component("books-0", "workload", (True, True), True),
            component("books-1", "workload", (False,), None),
        )
    )
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("NAMESPACE"))
    assert header.split() == ["NAMESPACE", "POD", "KIND", "STATUS", "PIDS", "ADDRESSES"]
    assert any(line.split()[:4] == ["booksapp", "books-0", "workload", "running"] for line in lines)
    assert any(line.split()[:4] == ["booksapp", "books-1", "workload", "down"] for line in lines)
    assert "1 of 2 components running" in text
    assert "  books-1: something" in lines
    assert "http://127.77.0.4:8080" in text and "\x1b[" not in text


def test_status_without_a_mesh_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(UnreachableError) as caught:
        LocalPlatform(tmp_path).status()
    assert caught.value.exit_code is ExitCode.UNREACHABLE
    assert "meshctl up" in (caught.value.hint or "")


def test_status_of_a_crashed_mesh_shows_it_down(tmp_path: Path) -> None:
    child, process = spawn("app", [sys.executable, "-c", "pass"], tmp_path / "x.log")
    child.wait(10)
    layout = Layout(tmp_path)
    record = MeshRecord("2026-01-02T03:04:05Z", 1, str(tmp_path), "127.77.0.0/16", True, state="running")
    record.components.append(
        ComponentRecord(
            name="books-0",
            kind="workload",
            namespace="booksapp",
            deployment="books",
            pod="books-0",
            addresses={"app": "127.77.3.1:7002", "admin": "127.77.3.1:4191"},
            identity="books.booksapp.serviceaccount.identity.meshctl.cluster.local",
            service="books",
            service_port=7002,
            processes=[process],
        )
    )
    state.write_record(layout, record)
    platform = LocalPlatform(tmp_path)
    status = platform.status()
    (books,) = status.components
    assert books.state == "down" and "not running" in books.detail
    assert status.exit_code is ExitCode.FAILED
    (proxy,) = platform.proxies()
    assert proxy.admin == "127.77.3.1:4191" and proxy.kind == "sidecar" and proxy.service == "books"


def test_kubernetes_without_a_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    cli = CliContext(platform_name=PlatformName.KUBERNETES, home=tmp_path)
    with pytest.raises(ConfigError) as caught:
        open_platform(cli.platform_spec())
    assert "no kubeconfig for the kubernetes platform" in caught.value.message and caught.value.hint
    assert isinstance(open_platform(CliContext(home=tmp_path).platform_spec()), LocalPlatform)


def test_targets_select_proxies() -> None:
    def proxy(pod: str, deployment: str, ns: str = "booksapp") -> ProxyInfo:
        return ProxyInfo(pod, ns, deployment, "127.0.0.1:4191", "", "sidecar", deployment, 7000)

    proxies = [
        proxy("books-0", "books"),
        proxy("books-1", "books"),
        proxy("webapp-0", "webapp"),
        proxy("x-0", "x", "other"),
    ]
    assert [p.pod for p in select(proxies, Target(Kind.DEPLOYMENT, "books", "booksapp"))] == [
        "books-0",
        "books-1",
    ]
    assert [p.pod for p in select(proxies, Target(Kind.POD, "webapp-0", "booksapp"))] == ["webapp-0"]
    assert len(select(proxies, Target(Kind.NAMESPACE, "booksapp", "booksapp"))) == 3
    assert select(proxies, Target(Kind.DEPLOYMENT, "books", "other")) == []
