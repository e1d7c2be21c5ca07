"""A fixed traffic scenario whose exposition is the golden file and the input of the promtool test."""

from __future__ import annotations

from meshctl.metrics.process import ProcessStats
from meshctl.metrics.registry import ProxyMetrics

BOOKS = "books.booksapp.svc.cluster.local:7000"
AUTHORS = "authors.booksapp.svc.cluster.local:7001"
HOSTILE = 'evil"} 1\nrequest_total{x="\\'  # tries to end the label, the line and start a sample


def fixed_process() -> ProcessStats:
    return ProcessStats(start_time_seconds=1700000000.5, cpu_seconds=12.25, resident_memory_bytes=41943040)


def scenario_metrics() -> ProxyMetrics:
    metrics = ProxyMetrics(version="0.0.0-golden", process_stats=fixed_process, max_authorities=3)

    # Inbound to the webapp: one profiled route, one unmatched request.
    books = metrics.route("inbound", "webapp.booksapp.svc.cluster.local:7000", "GET /books", True,
                          "booksapp", "webapp")  # fmt: skip
    for latency_ms, status in ((0.5, 200), (7.0, 200), (250.0, 200), (1200.0, 500)):
        books.on_request()
        books.on_response(status, None, latency_ms, status >= 500)
    default = metrics.route("inbound", "webapp.booksapp.svc.cluster.local:7000", "[DEFAULT]", True,
                            "booksapp", "webapp")  # fmt: skip
    default.on_request()
    default.on_response(404, None, 1.0, False)

    # Outbound HTTP with one retry: the client saw a 201, the endpoints a 503 then a 201.
    create = metrics.route("outbound", BOOKS, "POST /books", True, "booksapp", "books")
    create.on_request()
    create.on_actual_request()
    create.on_actual_response(503, None, 4.0, True)
    create.on_actual_request()
    create.on_actual_response(201, None, 8.5, False)
    create.on_response(201, None, 12.5, False)

    # Outbound gRPC: OK, UNAVAILABLE, a code out of range (counted as UNKNOWN), one beyond +Inf.
    get = metrics.route("outbound", AUTHORS, "/Authors/Get", False, "booksapp", "authors")
    for grpc_status, latency_ms in ((0, 3.0), (14, 45000.0), (99, 2.0), (0, 70000.0)):
        get.on_request()
        get.on_actual_request()
        get.on_actual_response(200, grpc_status, latency_ms, grpc_status != 0)
        get.on_response(200, grpc_status, latency_ms, grpc_status != 0)

    # A hostile Host header, and one authority past the cap of three inbound authorities.
    evil = metrics.route("inbound", HOSTILE, "[DEFAULT]", False, "booksapp", "webapp")
    evil.on_request()
    evil.on_response(400, None, 0.25, False)
    spare = metrics.route("inbound", "spare.example:80", "[DEFAULT]", False, "booksapp", "webapp")
    spare.on_request()
    spare.on_response(200, None, 1.0, False)
    folded = metrics.route("inbound", "one-too-many.example:80", "[DEFAULT]", False, "booksapp", "webapp")
    folded.on_request()
    folded.on_response(200, None, 1.0, False)

    for _ in range(3):
        metrics.tcp_opened("inbound", "src", True)
    metrics.tcp_closed("inbound", "src", True)
    for _ in range(2):
        metrics.tcp_opened("outbound", "dst", True)
        metrics.tcp_closed("outbound", "dst", True)
    metrics.proxy_error("no endpoints")
    metrics.proxy_error("no endpoints")
    metrics.proxy_error("response timeout")
    return metrics
