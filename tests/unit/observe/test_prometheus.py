"""The Prometheus door: answers parsed, library errors translated into messages naming the fixes."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException

from meshctl.errors import ExitCode, MeshError
from meshctl.observe.prometheus import PrometheusClient, QueryRecord


class FakeConnection:
    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.answer = answer
        self.error = error
        self.closed = False

    def custom_query(self, expr: str, timeout: float | None = None) -> Any:
        if self.error is not None:
            raise self.error
        return self.answer

    def get_targets(self, state: str | None = None) -> Any:
        if self.error is not None:
            raise self.error
        return self.answer

    def close(self) -> None:
        self.closed = True


def _client(connection: FakeConnection) -> PrometheusClient:
    return PrometheusClient("http://127.0.0.9:9090", _connection=connection)


def test_samples_are_parsed_and_nan_dropped() -> None:
    answer = [
        {"metric": {"rt_route": "GET /"}, "value": [1.0, "12"]},
        {"metric": {"rt_route": "POST /"}, "value": [1.0, "NaN"]},
    ]
    seen: list[QueryRecord] = []
    client = _client(FakeConnection(answer))
    client.on_query = seen.append
    samples = client.query("up")
    assert [(s.labels["rt_route"], s.value) for s in samples] == [("GET /", 12.0)]
    assert len(client.queries) == 1 and seen[0].expr == "up" and seen[0].series == 1


def test_scrape_interval_of_the_proxies() -> None:
    targets = {
        "activeTargets": [
            {"labels": {"pod": "a"}, "scrapeInterval": "5s"},
            {"labels": {"pod": "b"}, "scrapeInterval": "15s"},
            {"labels": {"job": "prometheus"}, "scrapeInterval": "1m"},
        ]
    }
    assert _client(FakeConnection(targets)).scrape_interval_s() == 15.0
    assert _client(FakeConnection({"activeTargets": []})).scrape_interval_s() is None


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (requests.exceptions.ConnectionError("[Errno 111] Connection refused"), ExitCode.UNREACHABLE,
         "cannot reach Prometheus at http://127.0.0.9:9090: connection refused"),
        (requests.exceptions.ReadTimeout("slow"), ExitCode.UNREACHABLE, "did not answer within 5s"),
        (PrometheusApiClientException("HTTP Status Code 404 (b'404 page not found')"), ExitCode.UNREACHABLE,
         "answered HTTP 404: not a Prometheus API"),
        (PrometheusApiClientException(
            'HTTP Status Code 400 (b\'{"status":"error","errorType":"bad_data","error":"parse error"}\')'),
         ExitCode.FAILED, "refused a query: parse error"),
        (KeyError("data"), ExitCode.UNREACHABLE, "does not answer like a Prometheus API"),
    ],
)  # fmt: skip
def test_errors_name_the_flag_and_the_check(error: Exception, code: ExitCode, words: str) -> None:
    with pytest.raises(MeshError) as caught:
        _client(FakeConnection(error=error)).query("up")
    assert caught.value.exit_code is code
    assert words in caught.value.message
    if code is ExitCode.UNREACHABLE:
        assert "--prometheus-url" in (caught.value.hint or "") and "meshctl check" in (caught.value.hint or "")


def test_close() -> None:
    connection = FakeConnection([])
    client = _client(connection)
    client.close()
    assert connection.closed and client._connection is None
