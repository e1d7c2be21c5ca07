from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pytest

from bench.control_scale import control_document, parse_sizes, pod_identity
from bench.control_scale_clients import Proxy, delta_version, snapshot_version
from bench.control_scale_report import (
    budgets,
    change_summary,
    published_times,
    render_markdown,
    size_summary,
)
from meshctl.api import mesh_pb2
from meshctl.control.config import hash_token, parse_control_config
from meshctl.identity import parse_identity


@pytest.mark.parametrize("version", [1, 127, 128, 300, 1_764_405_692_124, 2**63 + 5])
def test_the_version_is_read_from_the_wire_bytes_as_protobuf_reads_it(version: int) -> None:
    snapshot = mesh_pb2.Snapshot(version=version, services=[mesh_pb2.Service(name="a", namespace="b", port=1)])
    wire = snapshot.SerializeToString(deterministic=True)
    assert snapshot_version(wire) == mesh_pb2.Snapshot.FromString(wire).version == version


def test_a_simulated_proxy_takes_a_delta_only_from_the_version_it_holds() -> None:
    proxy = Proxy("p", "i", b"t", b"", version=7)
    whole = mesh_pb2.Snapshot(version=9, services=[mesh_pb2.Service(name="a")]).SerializeToString()
    assert delta_version(proxy, whole) == 9  # a whole snapshot may come at any time
    proxy.version = 9
    assert delta_version(proxy, mesh_pb2.Snapshot(version=10, delta=True, base_version=9).SerializeToString()) == 10
    with pytest.raises(ValueError, match="a delta from version 8 to a proxy at 9"):
        delta_version(proxy, mesh_pb2.Snapshot(version=9, delta=True, base_version=8).SerializeToString())


def test_a_snapshot_without_a_version_first_is_decoded_whole() -> None:
    wire = mesh_pb2.Snapshot(services=[mesh_pb2.Service(name="a")]).SerializeToString()
    assert snapshot_version(wire) == 0


def test_the_mesh_document_is_a_valid_control_config_with_one_token_per_pod(tmp_path: Path) -> None:
    document = control_document(25, "127.0.0.1:1", "127.0.0.1:2", ready_flip=13)
    config = parse_control_config(document, base=tmp_path)
    assert [len(s.endpoints) for s in config.services] == [10, 10, 5]
    endpoints = [e for s in config.services for e in s.endpoints]
    assert len({e.address for e in endpoints}) == 25
    assert [e.pod for e in endpoints if not e.ready] == ["svc-1-3"]
    pod, identity = pod_identity(13)
    assert (pod, parse_identity(identity)) == ("svc-1-3", ("svc-1", "scale"))
    assert config.tokens[pod].token_sha256 == hash_token(f"token-{pod}")


def test_sizes_parse_sorted_and_unique_and_bad_ones_are_refused() -> None:
    assert parse_sizes("1000, 10,100,10") == [10, 100, 1000]
    for bad in ("ten", "0,10", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)


def test_publication_times_come_from_the_control_planes_log_lines() -> None:
    log = (
        "2026-11-29 08:41:32,123 INFO meshctl.control.store: snapshot 17: 3 services, 0 resources\n"
        "2026-11-29 08:41:32,200 INFO meshctl.control.discovery: watch opened by 'a'\n"
        "2026-11-29 08:41:33,007 INFO meshctl.control.store: snapshot 18: 3 services, 1 resources\n"
    )
    published = published_times(log)
    assert sorted(published) == [17, 18]
    expected = time.mktime(time.strptime("2026-11-29 08:41:32", "%Y-%m-%d %H:%M:%S")) + 0.123
    assert published[17] == pytest.approx(expected)
    assert published[18] - published[17] == pytest.approx(0.884)


def test_reach_runs_from_publication_to_the_last_proxy_and_delivery_counts_every_proxy() -> None:
    changes: list[dict[str, Any]] = [
        {"written": 100.0, "published": 100.5, "times": [100.6, 100.7, 100.9]},
        {"written": 200.0, "published": 200.2, "times": [200.3, 200.4]},
        {"written": 300.0, "published": None, "times": [300.9]},  # publication not in the log
    ]
    s = change_summary(changes)
    assert s["changes"] == 3
    assert s["reach_s"]["p50"] == pytest.approx(0.2) and s["reach_s"]["p99"] == pytest.approx(0.4)
    assert s["delivery_s"]["max"] == pytest.approx(0.4)
    assert s["from_write_s"]["p99"] == pytest.approx(0.9)
    assert s["detect_s"]["p50"] == pytest.approx(0.2)


def _size(n: int, **over: Any) -> dict[str, Any]:
    size: dict[str, Any] = {
        "proxies": n,
        "delivery": "delta",
        "snapshot_bytes": 136 * n,
        "cpu_s": {"connect": 1.0, "idle": 0.01, "idle_seconds": 10.0, "changes": 0.5, "certify": 0.9},
        "rss_kib": {"before": 40_000, "connected": 40_000 + 30 * n},
        "changes": [{"written": 0.0, "published": 0.5, "times": [0.6, 0.9], "bytes": 1434}],
        "certify": {"count": 300, "seconds": 1.0, "errors": 0},
    }
    size.update(over)
    return size


def test_a_size_row_divides_by_the_proxies_and_sets_certificates_against_openssl() -> None:
    row = size_summary(_size(1000), {"count": 300, "seconds": 0.5, "cpu_s": 0.25})
    assert row["rss_kib_per_proxy"] == pytest.approx(30.0)
    assert row["cpu_ms_per_change"] == pytest.approx(500.0)
    assert row["cpu_us_per_change_per_proxy"] == pytest.approx(500.0)
    assert row["idle_cpu_us_per_s_per_proxy"] == pytest.approx(1.0)
    assert row["certs_per_s"] == pytest.approx(300.0)
    assert row["cpu_ms_per_cert"] == pytest.approx(3.0)
    assert row["certs_vs_openssl"] == pytest.approx(0.5)
    assert row["certs_per_cpu_s"] == pytest.approx(300 / 0.9)
    assert row["certs_per_cpu_s_vs_openssl"] == pytest.approx((300 / 0.9) / 1200)


def test_a_certificate_burst_with_errors_has_no_rate() -> None:
    row = size_summary(_size(10, certify={"count": 300, "seconds": 1.0, "errors": 2}))
    assert row["certs_per_s"] is None and row["certs_vs_openssl"] is None


def test_budgets_judge_reach_at_a_thousand_rss_at_the_largest_and_certificates_at_the_slowest() -> None:
    rows = [size_summary(_size(10)), size_summary(_size(1000, certify={"count": 100, "seconds": 1.0, "errors": 0}))]
    verdicts = {b["budget"].split(" (")[0].split(",")[0]: b["verdict"] for b in budgets(rows)}
    assert verdicts == {
        "endpoint change reaches 1": "pass",
        "certificates issued per second": "fail",
        "control-plane RSS per connected proxy": "pass",
    }
    only_small = budgets([size_summary(_size(10))])
    assert only_small[0]["verdict"] == "not measured"


def test_the_markdown_has_one_row_per_size_and_names_incomplete_sizes() -> None:
    results = {
        "sizes": [_size(10), _size(100, error="the simulated proxies sent no 'version' within 30 s")],
        "openssl": {"count": 300, "seconds": 1.5},
        "machine": {"cpu": "test cpu", "cpus": 2},
    }
    text = render_markdown(results)
    assert "| 10 | delta | 1.3 KiB | 1.4 KiB |" in text and "| 100 | delta | 13.3 KiB | 1.4 KiB |" in text
    assert "200 certificates/s" in text
    assert "- 100 proxies (delta): the simulated proxies sent no 'version' within 30 s" in text


def test_budgets_are_judged_on_the_runs_with_deltas_and_older_results_were_complete_snapshots() -> None:
    slow = {"changes": [{"written": 0.0, "published": 0.5, "times": [0.6, 2.5], "bytes": 136_000}]}
    rows = [size_summary(_size(1000, delivery="full", **slow)), size_summary(_size(1000))]
    assert [b["verdict"] for b in budgets(rows)][0] == "pass"
    assert [b["verdict"] for b in budgets(rows[:1])][0] == "fail"
    old = _size(10)
    del old["delivery"]
    assert size_summary(old)["delivery"] == "full"
