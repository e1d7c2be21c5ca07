"""`logs`, `diagnostics` and `version` end to end on a local mesh: the real control plane, proxies and apps,
their real log files in the state directory, their real admin endpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conventions import on_terminal
from tests.integration.local_mesh import UP_TIMEOUT_S, free_subnet, meshctl

pytestmark = pytest.mark.integration
NS = "booksapp"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("ops-mesh")
    up = meshctl(home, "up", "--subnet", free_subnet(), "--rps", "2", timeout=UP_TIMEOUT_S + 30)
    try:
        assert up.returncode == 0, up.stderr
        yield home
    finally:
        meshctl(home, "down", timeout=120)


def books_pods(home: Path) -> list[str]:
    document = json.loads(meshctl(home, "status", "-n", NS, "-o", "json").stdout)
    return sorted(c["pod"] for c in document["components"] if c["deployment"] == "books")


def test_logs_of_every_instance_prefixed_and_bounded_by_tail(home: Path) -> None:
    pods = books_pods(home)
    assert len(pods) >= 2
    done = meshctl(home, "logs", "deploy/books", "-n", NS, "--tail", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    prefixes = [line.split()[0] for line in lines]
    assert set(prefixes) == set(pods) and all(prefixes.count(p) <= 3 for p in pods)
    assert all(re.match(r"^\S+\s+\S", line) for line in lines)
    assert not any(" meshctl up: " in line for line in lines)  # the run headers are not the process's lines
    stamps = [line.split(None, 1)[1][:23] for line in lines if re.match(r"^\S+\s+\d{4}-", line)]
    assert stamps == sorted(stamps)  # the instances' lines merged in time order


def test_logs_of_the_control_plane_and_of_the_apps_as_json(home: Path) -> None:
    done = meshctl(home, "logs", "--control", "--since", "1h", "-o", "json")
    assert done.returncode == 0, done.stderr
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert documents and len({d["instance"] for d in documents}) == 1  # the one control plane
    assert any("serving" in d["line"] for d in documents)
    assert all(set(d) == {"instance", "time", "line"} for d in documents)
    app = meshctl(home, "logs", "deploy/webapp", "-n", NS, "--app")
    assert app.returncode == 0, app.stderr


def test_logs_follow_shows_new_lines_and_ends_cleanly_on_ctrl_c(home: Path) -> None:
    pod = books_pods(home)[0]
    env = {**os.environ, "MESHCTL_HOME": str(home), "NO_COLOR": "1"}
    follower = subprocess.Popen([sys.executable, "-m", "meshctl", "logs", f"pod/{pod}", "-n", NS, "-f", "--tail", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        time.sleep(2.0)  # the follower is reading the end of the log
        changed = meshctl(home, "log-level", f"pod/{pod}", "-n", NS, "debug", "--for", "1s")
        assert changed.returncode == 0, changed.stderr
        time.sleep(2.5)  # the proxy logs the change, then its expiry
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    assert re.search(rf"^{re.escape(pod)}\s+.*log level set to 'debug'", out, re.MULTILINE), out
    assert re.search(rf"^{re.escape(pod)}\s+.*log level 'debug' expired: back to 'info'", out, re.MULTILINE), out


def test_logs_colour_the_instances_on_a_terminal_only(home: Path) -> None:
    base = {**os.environ, "MESHCTL_HOME": str(home), "TERM": "xterm-256color"}
    base.pop("FORCE_COLOR", None)
    args = [sys.executable, "-m", "meshctl", "logs", "deploy/books", "-n", NS, "--tail", "2"]
    code, coloured = on_terminal(args, {**base, "NO_COLOR": ""})
    assert code == 0 and "\x1b[" in coloured
    code, plain = on_terminal(args, {**base, "NO_COLOR": "1"})
    assert code == 0 and "\x1b" not in plain and plain.strip()


def test_diagnostics_proxy_metrics_and_config(home: Path) -> None:
    pods = books_pods(home)
    done = meshctl(home, "diagnostics", "proxy-metrics", "deploy/books", "-n", NS)
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^# instance (\S+)$", done.stdout, re.MULTILINE) == [f"{NS}/{p}" for p in pods]
    assert done.stdout.count('proxy_build_info{version="0.1.0"} 1') == len(pods)
    config = meshctl(home, "diagnostics", "config", "deploy/books", "-n", NS, "-o", "json")
    assert config.returncode == 0, config.stderr
    proxies = json.loads(config.stdout)["proxies"]
    assert [p["instance"] for p in proxies] == pods and all(p["error"] is None for p in proxies)
    first = proxies[0]["config"]
    assert first["log_level"] == "info" and first["version"] == "0.1.0"
    assert first["certificate"]["identity"] == first["config"]["identity"]
    assert any(authority.startswith("authors.booksapp.") for authority in first["endpoints"])
    # No secret leaves the proxy: neither its service-account token nor any key.
    tokens = [path.read_text().strip() for path in (home / "tokens").iterdir()]
    assert tokens and not any(token in config.stdout for token in tokens)
    assert "PRIVATE KEY" not in config.stdout
    table = meshctl(home, "diagnostics", "config", f"pod/{pods[0]}", "-n", NS)
    assert table.returncode == 0 and "LISTENERS" in table.stdout and "inbound" in table.stdout


def test_version_of_client_control_plane_and_every_proxy(home: Path) -> None:
    done = meshctl(home, "version")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Client version: 0.1.0" and lines[1] == "Control plane version: 0.1.0"
    assert re.fullmatch(r"Proxy versions: \d+ proxies at 0\.1\.0", lines[2]), lines[2]
    document = json.loads(meshctl(home, "version", "-o", "json").stdout)
    assert document["control_plane"] == {"version": "0.1.0", "error": None}
    assert document["proxies"] and {p["version"] for p in document["proxies"]} == {"0.1.0"}


def test_version_without_a_mesh_prints_the_client_and_exits_3(tmp_path: Path) -> None:
    done = meshctl(tmp_path / "none", "version")
    assert done.returncode == 3
    assert done.stdout.splitlines()[0] == "Client version: 0.1.0"
    assert "unavailable (no mesh is running in" in done.stdout
    assert done.stderr.startswith("Error: no mesh is running") and "\nhint: start one with `meshctl up`" in done.stderr
    client = meshctl(tmp_path / "none", "version", "--client")
    assert client.returncode == 0 and client.stdout == "Client version: 0.1.0\n"


def test_logs_of_a_target_with_no_instance_is_one_line_with_a_hint(home: Path) -> None:
    done = meshctl(home, "logs", "deploy/nothing", "-n", NS)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("Error: no meshed pod matches deploy/nothing") and "\nhint: " in done.stderr
