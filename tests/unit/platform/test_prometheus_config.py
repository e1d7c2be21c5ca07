"""prometheus.yml: every proxy and the control plane are targets with cluster-style labels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from meshctl.errors import MeshError
from meshctl.platform.local import prometheus
from meshctl.platform.local.addresses import AddressPlan
from meshctl.platform.local.state import Layout
from meshctl.platform.local.topology import DemoOptions, Topology

TOPOLOGY = Topology(AddressPlan.parse("127.77.0.0/16"), DemoOptions())


def _targets(config: dict[str, object], job: str) -> dict[str, dict[str, str]]:
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}  # type: ignore[attr-defined]
    return {s["targets"][0]: s.get("labels", {}) for s in jobs[job]["static_configs"]}


def test_every_proxy_admin_is_scraped_with_its_labels() -> None:
    config = yaml.safe_load(prometheus.render_config(TOPOLOGY))
    proxies = _targets(config, prometheus.PROXY_JOB)
    assert set(proxies) == {p.admin for p in TOPOLOGY.proxies}
    books = proxies["127.77.3.2:4191"]
    assert books == {"namespace": "booksapp", "pod": "books-1", "deployment": "books", "component": "proxy"}
    assert proxies["127.77.0.4:4191"]["deployment"] == "ingress"


def test_control_plane_admin_is_scraped() -> None:
    config = yaml.safe_load(prometheus.render_config(TOPOLOGY))
    control = _targets(config, prometheus.CONTROL_JOB)
    assert control == {
        "127.77.0.2:9996": {
            "namespace": "meshctl-system",
            "pod": "meshctl-control-0",
            "deployment": "meshctl-control",
            "component": "control-plane",
        }
    }
    assert config["global"]["scrape_interval"] == prometheus.SCRAPE_INTERVAL


def test_no_demo_has_no_proxy_job() -> None:
    config = yaml.safe_load(prometheus.render_config(Topology(TOPOLOGY.plan, None)))
    assert prometheus.PROXY_JOB not in {j["job_name"] for j in config["scrape_configs"]}


def test_command_binds_the_planned_address(tmp_path: Path) -> None:
    argv = prometheus.command("/usr/bin/prometheus", Layout(tmp_path), TOPOLOGY)
    assert "--web.listen-address=127.77.0.3:9090" in argv
    assert f"--config.file={tmp_path / 'prometheus' / 'prometheus.yml'}" in argv


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus.render_config(TOPOLOGY))
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_binary_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHCTL_PROMETHEUS", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(prometheus, "DEFAULT_BINARY", "/nonexistent/prometheus")
    with pytest.raises(MeshError) as caught:
        prometheus.find_prometheus()
    assert "apt-get install -y prometheus" in (caught.value.hint or "")


def test_configured_binary_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MESHCTL_PROMETHEUS", str(tmp_path / "nope"))
    with pytest.raises(MeshError, match="MESHCTL_PROMETHEUS"):
        prometheus.find_prometheus()
