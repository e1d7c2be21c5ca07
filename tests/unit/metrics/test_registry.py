from __future__ import annotations

import random

import pytest

from meshctl.metrics.histogram import BOUNDS_MS, LE_LABELS
from meshctl.metrics.process import ProcessStats
from meshctl.metrics.registry import OVERFLOW, ProxyMetrics
from tests.unit.metrics.exposition_parser import Exposition, parse
from tests.unit.metrics.scenario import BOOKS, fixed_process

LABELS = {"direction": "outbound", "authority": BOOKS, "tls": "true", "dst_namespace": "booksapp",
          "dst_service": "books"}  # fmt: skip


def _metrics(**caps: int) -> ProxyMetrics:
    return ProxyMetrics(version="1.2.3", process_stats=fixed_process, **caps)


def _parsed(metrics: ProxyMetrics) -> Exposition:
    return parse(metrics.render().decode("utf-8"))


def test_route_is_cached_per_label_tuple() -> None:
    metrics = _metrics()
    first = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    assert metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books") is first
    assert metrics.route("outbound", BOOKS, "GET /books", False, "booksapp", "books") is not first
    assert metrics.route("inbound", BOOKS, "GET /books", True, "booksapp", "books") is not first


def test_request_and_response_counts() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    for status in (200, 200, 503):
        stats.on_request()
        stats.on_response(status, None, 3.0, status >= 500)
    out = _parsed(metrics)
    assert out.value("request_total", **LABELS) == 3
    assert out.value("route_request_total", rt_route="GET /books") == 3
    assert out.value("response_total", status_code="200", classification="success") == 2
    assert out.value("response_total", status_code="503", classification="failure") == 1
    assert out.value("route_response_total", rt_route="GET /books", status_code="503") == 1


def test_authority_series_sum_the_routes() -> None:
    metrics = _metrics()
    for route, n in (("GET /books", 2), ("[DEFAULT]", 3)):
        stats = metrics.route("outbound", BOOKS, route, True, "booksapp", "books")
        for _ in range(n):
            stats.on_request()
            stats.on_response(200, None, 7.0, False)
    out = _parsed(metrics)
    assert out.value("request_total", **LABELS) == 5
    assert out.value("response_total", **LABELS, status_code="200") == 5
    assert out.value("response_latency_seconds_count", **LABELS) == 5
    assert out.value("response_latency_seconds_sum", **LABELS) == pytest.approx(0.035)


def test_grpc_status_label_and_unknown_codes() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "/Books/Get", True, "booksapp", "books")
    stats.on_response(200, 0, 1.0, False)
    stats.on_response(200, 14, 1.0, True)
    stats.on_response(200, 1234, 1.0, True)  # not a gRPC code: counted as UNKNOWN (2)
    stats.on_response(200, -1, 1.0, True)
    out = _parsed(metrics)
    assert out.value("route_response_total", grpc_status="0", classification="success") == 1
    assert out.value("route_response_total", grpc_status="14") == 1
    assert out.value("route_response_total", grpc_status="2") == 2
    http_only = [labels for labels, _ in out.series("route_response_total") if "grpc_status" not in labels]
    assert http_only == []


@pytest.mark.parametrize("latency_ms", [0.0, 0.5, 1.0, 1.0001, 4.99, 5.0, 49.9, 999.0, 50000.0, 50000.5, 1e9])
def test_histogram_buckets_are_cumulative_with_le_inclusive(latency_ms: float) -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    stats.on_response(200, None, latency_ms, False)
    out = _parsed(metrics)
    buckets = {labels["le"]: value for labels, value in out.series("route_response_latency_seconds_bucket")}
    assert list(buckets) == list(LE_LABELS)
    for bound, le in zip(BOUNDS_MS, LE_LABELS, strict=False):
        assert buckets[le] == (1 if latency_ms <= bound else 0), bound
    assert buckets["+Inf"] == 1
    assert out.value("route_response_latency_seconds_count") == 1
    assert out.value("route_response_latency_seconds_sum") == pytest.approx(latency_ms / 1000)


def test_histogram_of_many_observations() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    rng = random.Random(7)
    observed = [rng.expovariate(1 / 40) for _ in range(5000)]
    for latency_ms in observed:
        stats.on_response(200, None, latency_ms, False)
    out = _parsed(metrics)
    buckets = {labels["le"]: value for labels, value in out.series("route_response_latency_seconds_bucket")}
    counts = list(buckets.values())
    assert counts == sorted(counts), "cumulative buckets never decrease"
    for bound, le in zip(BOUNDS_MS, LE_LABELS, strict=False):
        assert buckets[le] == sum(1 for x in observed if x <= bound)
    assert out.value("route_response_latency_seconds_count") == 5000
    assert out.value("route_response_latency_seconds_sum") == pytest.approx(sum(observed) / 1000)


def test_actual_requests_and_responses_have_no_histogram() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "POST /books", True, "booksapp", "books")
    stats.on_request()
    for status in (503, 503, 201):
        stats.on_actual_request()
        stats.on_actual_response(status, None, 5.0, status >= 500)
    stats.on_response(201, None, 20.0, False)
    out = _parsed(metrics)
    assert out.value("route_request_total") == 1
    assert out.value("route_actual_request_total") == 3
    assert out.value("route_actual_response_total", status_code="503", classification="failure") == 2
    assert out.value("route_actual_response_total", status_code="201", classification="success") == 1
    assert out.value("route_response_latency_seconds_count") == 1


def test_tcp_counters_and_open_gauge() -> None:
    metrics = _metrics()
    for _ in range(3):
        metrics.tcp_opened("inbound", "src", True)
    metrics.tcp_closed("inbound", "src", True)
    metrics.tcp_opened("outbound", "dst", False)
    out = _parsed(metrics)
    inbound = {"direction": "inbound", "peer": "src", "tls": "true"}
    assert out.value("tcp_open_total", **inbound) == 3
    assert out.value("tcp_close_total", **inbound) == 1
    assert out.value("tcp_open_connections", **inbound) == 2
    assert out.value("tcp_open_connections", direction="outbound", peer="dst", tls="false") == 1


def test_proxy_errors_build_info_and_process() -> None:
    metrics = _metrics()
    metrics.proxy_error("no endpoints")
    metrics.proxy_error("no endpoints")
    out = _parsed(metrics)
    assert out.value("proxy_errors_total", reason="no endpoints") == 2
    assert out.value("proxy_build_info", version="1.2.3") == 1
    assert out.value("process_start_time_seconds") == 1700000000.5
    assert out.value("process_cpu_seconds_total") == 12.25
    assert out.value("process_resident_memory_bytes") == 41943040


def test_one_histogram_per_series_whatever_the_status() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    for status, latency_ms in ((200, 1.5), (404, 2.5), (503, 30.0)):
        stats.on_response(status, None, latency_ms, status >= 500)
    out = _parsed(metrics)
    ((labels, count),) = out.series("route_response_latency_seconds_count")
    assert count == 3 and "status_code" not in labels
    assert out.value("route_response_latency_seconds_sum") == pytest.approx(0.034)


def test_series_without_responses_have_no_histogram_lines() -> None:
    metrics = _metrics()
    metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books").on_request()
    out = _parsed(metrics)
    assert out.value("route_request_total") == 1
    assert out.series("route_response_latency_seconds_bucket") == []
    assert out.types["route_response_latency_seconds"] == "histogram"


def test_resident_memory_is_left_out_when_unknown() -> None:
    metrics = ProxyMetrics(process_stats=lambda: ProcessStats(1.0, 2.0, None))
    assert "process_resident_memory_bytes" not in metrics.render().decode()


def test_every_family_has_help_and_type_and_counters_end_in_total() -> None:
    out = _parsed(ProxyMetrics(process_stats=fixed_process))
    assert set(out.types) == set(out.helps)
    for name, kind in out.types.items():
        assert kind != "counter" or name.endswith("_total"), name
    assert {"request_total", "response_total", "response_latency_seconds", "route_request_total",
            "route_response_total", "route_response_latency_seconds", "route_actual_request_total",
            "route_actual_response_total", "tcp_open_total", "tcp_close_total", "tcp_open_connections",
            "proxy_errors_total", "proxy_build_info", "process_start_time_seconds",
            "process_cpu_seconds_total", "process_resident_memory_bytes"} <= set(out.types)  # fmt: skip


def test_hostile_labels_cannot_break_the_exposition() -> None:
    metrics = _metrics()
    hostile = 'a"} 1\nrequest_total{direction="inbound"} 999\n# TYPE x counter\\'
    stats = metrics.route("inbound", hostile, hostile, False, hostile, hostile)
    stats.on_request()
    stats.on_response(200, None, 1.0, False)
    metrics.proxy_error(hostile)
    out = _parsed(metrics)
    assert out.value("request_total", direction="inbound") == 1
    assert len(out.series("request_total")) == 1
    ((labels, _),) = out.series("route_request_total")
    assert labels["authority"] == labels["rt_route"] == labels["dst_service"]
    assert labels["authority"].startswith('a"} 1\\x0arequest_total')
    assert out.value("proxy_errors_total", reason=labels["authority"]) == 1


def test_values_that_clean_alike_share_one_series() -> None:
    metrics = _metrics()
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    first = metrics.route("inbound", long_a, "r", False, "", "")
    assert metrics.route("inbound", long_b, "r", False, "", "") is first
    first.on_request()
    first.on_request()
    out = _parsed(metrics)  # the parser fails on duplicate series
    assert out.value("route_request_total", direction="inbound") == 2


def test_authorities_past_the_cap_fold_into_overflow_and_are_counted() -> None:
    metrics = _metrics(max_authorities=10)
    for i in range(25):
        metrics.route("inbound", f"host-{i}:80", "[DEFAULT]", False, "", "").on_request()
    metrics.route("outbound", "other:80", "[DEFAULT]", False, "", "").on_request()  # own cap per direction
    out = _parsed(metrics)
    inbound = {
        labels["authority"] for labels, _ in out.series("request_total") if labels["direction"] == "inbound"
    }
    assert len(inbound) == 11 and OVERFLOW in inbound
    assert out.value("request_total", direction="inbound", authority=OVERFLOW) == 15
    assert out.value("request_total", direction="outbound", authority="other:80") == 1
    assert out.value("proxy_metrics_overflow_total", label="authority") == 15
    # Known authorities keep their own series after the cap is reached.
    metrics.route("inbound", "host-3:80", "[DEFAULT]", False, "", "").on_request()
    assert _parsed(metrics).value("request_total", direction="inbound", authority="host-3:80") == 2


def test_routes_past_the_cap_fold_into_overflow() -> None:
    metrics = _metrics(max_routes_per_authority=2)
    for route in ("a", "b", "c", "d"):
        metrics.route("outbound", BOOKS, route, True, "booksapp", "books").on_request()
    out = _parsed(metrics)
    assert out.value("route_request_total", rt_route=OVERFLOW) == 2
    assert out.value("proxy_metrics_overflow_total", label="rt_route") == 2


def test_total_series_cap() -> None:
    metrics = _metrics(max_series=5)
    for i in range(8):
        metrics.route("outbound", BOOKS, "r", True, "booksapp", f"svc-{i}").on_request()
    out = _parsed(metrics)
    assert len(out.series("route_request_total")) == 6
    assert out.value("route_request_total", authority=OVERFLOW, rt_route=OVERFLOW) == 3
    assert out.value("proxy_metrics_overflow_total", label="series") == 3


def test_response_classes_past_the_cap_fold_into_overflow() -> None:
    metrics = _metrics(max_response_classes=4)
    stats = metrics.route("outbound", BOOKS, "r", True, "booksapp", "books")
    for status in range(200, 210):
        stats.on_response(status, None, 1.0, False)
    stats.on_response(599, None, 1.0, True)
    out = _parsed(metrics)
    assert out.value("route_response_total", status_code=OVERFLOW, classification="success") == 6
    assert out.value("route_response_total", status_code=OVERFLOW, classification="failure") == 1
    assert out.value("route_response_latency_seconds_count") == 11
    assert out.value("proxy_metrics_overflow_total", label="status_code") == 7


def test_final_responses_count_both_series_and_fold_each_one_past_the_cap() -> None:
    metrics = _metrics(max_response_classes=3)
    stats = metrics.route("outbound", BOOKS, "r", True, "booksapp", "books")
    for _ in range(3):  # classes seen again take the series found the first time
        stats.on_final_response(200, None, 1.0, False)
        stats.on_final_response(500, None, 1.0, True)
        stats.on_final_response(200, 99, 1.0, True)  # an unknown gRPC code is UNKNOWN (2)
    stats.on_final_response(200, 2, 1.0, True)
    for status in (201, 202, 201):  # past the cap: folded, and reported, every time
        stats.on_final_response(status, None, 1.0, False)
    out = _parsed(metrics)
    for family in ("route_response_total", "route_actual_response_total"):
        assert out.value(family, status_code="200", classification="success") == 3
        assert out.value(family, status_code="500", classification="failure") == 3
        assert out.value(family, status_code="200", grpc_status="2", classification="failure") == 4
        assert out.value(family, status_code=OVERFLOW, classification="success") == 3
    assert out.value("route_response_latency_seconds_count") == 13
    assert out.value("proxy_metrics_overflow_total", label="status_code") == 6  # both families, each time


def test_error_reasons_past_the_cap_fold_into_overflow() -> None:
    metrics = _metrics(max_error_reasons=2)
    for reason in ("a", "b", "c", "d", "a"):
        metrics.proxy_error(reason)
    out = _parsed(metrics)
    assert out.value("proxy_errors_total", reason="a") == 2
    assert out.value("proxy_errors_total", reason=OVERFLOW) == 2


def test_hostile_client_cannot_grow_memory_without_bound() -> None:
    metrics = _metrics(max_authorities=50, max_series=100)
    for i in range(20_000):
        metrics.route("inbound", f"{i}" + "y" * 2000, f"r{i}", False, "", "").on_request()
    assert len(metrics._series) <= 101
    assert len(metrics._routes) <= 200
    assert all(len(value) <= 256 for key in metrics._routes for value in key if isinstance(value, str))


def test_render_is_deterministic_whatever_the_order_of_events() -> None:
    events = [(direction, f"svc-{i}:80", f"r{j}", bool(i % 2), status)
              for direction in ("inbound", "outbound") for i in range(4) for j in range(3)
              for status in (200, 404, 503)]  # fmt: skip
    renders = []
    for seed in (1, 2, 3):
        metrics = _metrics()
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        for direction, authority, route, tls, status in shuffled:
            stats = metrics.route(direction, authority, route, tls, "ns", "svc")
            stats.on_request()
            stats.on_response(status, None, 2.5, status >= 500)
        renders.append(metrics.render())
    assert renders[0] == renders[1] == renders[2]
    assert renders[0] == renders[0]


def test_render_twice_gives_the_same_bytes_and_changes_nothing() -> None:
    metrics = _metrics()
    stats = metrics.route("outbound", BOOKS, "GET /books", True, "booksapp", "books")
    stats.on_request()
    stats.on_response(200, None, 3.0, False)
    assert metrics.render() == metrics.render()


@pytest.mark.parametrize("direction", ["in", "INBOUND", ""])
def test_unknown_direction_is_a_programming_error(direction: str) -> None:
    with pytest.raises(ValueError):
        _metrics().route(direction, BOOKS, "r", True, "", "")
    with pytest.raises(ValueError):
        _metrics().tcp_opened(direction, "src", True)


def test_unknown_tcp_peer_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        _metrics().tcp_opened("inbound", "client", True)
