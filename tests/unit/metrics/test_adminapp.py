"""The admin routes without sockets: request values in, response values out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from meshctl import __version__
from meshctl.metrics.adminapp import AdminApp, AdminRequest, is_loopback
from tests.unit.metrics.loglevel import LogLevel


class FixedMetrics:
    def render(self) -> bytes:
        return b"# HELP up Up.\n# TYPE up gauge\nup 1\n"


class Harness:
    def __init__(self) -> None:
        self.is_ready = False
        self.log = LogLevel("info")
        self.config: dict[str, Any] = {"pod": "books-0", "snapshot_version": 7}
        self.app = AdminApp(metrics=FixedMetrics(), ready=lambda: self.is_ready, get_log_level=self.log.get,
                            set_log_level=self.log.set, config_dump=self.dump)  # fmt: skip

    def dump(self) -> Mapping[str, Any]:
        return self.config

    def call(self, method: str, target: str, body: bytes = b"", peer: str | None = "127.0.0.1") -> Any:
        return self.app.handle(AdminRequest(method, target, body, peer))


@pytest.fixture
def admin() -> Harness:
    return Harness()


def test_metrics(admin: Harness) -> None:
    response = admin.call("GET", "/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert response.body.endswith(b"up 1\n")


def test_query_strings_and_absolute_form_reach_the_route(admin: Harness) -> None:
    assert admin.call("GET", "/metrics?name[]=up").status == 200
    assert admin.call("GET", "http://127.0.0.1:4191/live").status == 200


def test_ready_follows_the_callable(admin: Harness) -> None:
    assert (admin.call("GET", "/ready").status, admin.call("GET", "/ready").body) == (503, b"not ready\n")
    admin.is_ready = True
    assert (admin.call("GET", "/ready").status, admin.call("GET", "/ready").body) == (200, b"ready\n")


def test_live(admin: Harness) -> None:
    assert (admin.call("GET", "/live").status, admin.call("GET", "/live").body) == (200, b"live\n")


def test_config_dump_is_sorted_json(admin: Harness) -> None:
    response = admin.call("GET", "/config.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body) == admin.config | {"log_level": "info", "version": __version__}
    assert list(json.loads(response.body)) == sorted(json.loads(response.body))


def test_config_dump_carries_the_level_in_force_not_the_one_started_with(admin: Harness) -> None:
    assert admin.call("PUT", "/proxy-log-level", b"warn,meshctl.proxy=debug").status == 204
    dump = json.loads(admin.call("GET", "/config.json").body)
    assert dump["log_level"] == "warn,meshctl.proxy=debug"


def test_log_level_get_and_put(admin: Harness) -> None:
    assert admin.call("GET", "/proxy-log-level").body == b"info\n"
    response = admin.call("PUT", "/proxy-log-level", b"warn,meshctl.proxy=debug\n")
    assert (response.status, response.body) == (204, b"")
    assert admin.log.level == "warn,meshctl.proxy=debug"


@pytest.mark.parametrize("body", [b"loud", b"warn,meshctl.proxy=chatty", b"", b"  \n", b"\xff\xfe"])
def test_bad_log_level_is_400_and_changes_nothing(admin: Harness, body: bytes) -> None:
    response = admin.call("PUT", "/proxy-log-level", body)
    assert response.status == 400
    assert response.body.strip()
    assert admin.log.level == "info"


def test_bad_log_level_reports_the_reason(admin: Harness) -> None:
    assert b"invalid log directive 'loud'" in admin.call("PUT", "/proxy-log-level", b"loud").body


@pytest.mark.parametrize(
    "peer", ["10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1", None, "", "junk"]
)
def test_put_from_a_remote_peer_is_403(admin: Harness, peer: str | None) -> None:
    response = admin.call("PUT", "/proxy-log-level", b"debug", peer=peer)
    assert (response.status, response.body) == (403, b"Requests are only permitted from localhost.\n")
    assert admin.log.level == "info"


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.77.2.1", "::1", "::ffff:127.0.0.1"])
def test_put_from_loopback_is_allowed(admin: Harness, peer: str) -> None:
    assert admin.call("PUT", "/proxy-log-level", b"debug", peer=peer).status == 204


def test_get_log_level_is_allowed_from_anywhere(admin: Harness) -> None:
    assert admin.call("GET", "/proxy-log-level", peer="10.0.0.5").status == 200


def test_unknown_path_is_404(admin: Harness) -> None:
    for target in ("/", "/metricsx", "/metrics/", "*", "/../metrics"):
        assert admin.call("GET", target).status == 404, target


@pytest.mark.parametrize(("method", "target", "allow"), [
    ("POST", "/metrics", "GET, HEAD"),
    ("DELETE", "/ready", "GET, HEAD"),
    ("PUT", "/live", "GET, HEAD"),
    ("POST", "/proxy-log-level", "GET, HEAD, PUT"),
    ("PUT", "/config.json", "GET, HEAD"),
])  # fmt: skip
def test_wrong_method_is_405_with_allow(admin: Harness, method: str, target: str, allow: str) -> None:
    response = admin.call(method, target)
    assert response.status == 405
    assert dict(response.headers)["Allow"] == allow


def test_a_failing_callable_is_a_500_not_an_exception(
    admin: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Mapping[str, Any]:
        raise RuntimeError("boom")

    app = AdminApp(metrics=FixedMetrics(), ready=lambda: True, get_log_level=admin.log.get,
                   set_log_level=admin.log.set, config_dump=broken)  # fmt: skip
    assert app.handle(AdminRequest("GET", "/config.json")).status == 500
    assert "boom" in caplog.text


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert not is_loopback("fe80::1%lo")
    assert not is_loopback("0.0.0.0")


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1e9"])
def test_a_bad_for_is_refused_and_changes_nothing(admin: Harness, value: str) -> None:
    before = admin.call("GET", "/proxy-log-level").body
    response = admin.call("PUT", f"/proxy-log-level?for={value}", b"debug")
    assert response.status == 400 and b"for=" in response.body
    assert admin.call("GET", "/proxy-log-level").body == before


def test_for_restores_the_level_from_before_any_pending_change() -> None:
    async def scenario() -> None:
        harness = Harness()
        original = harness.call("GET", "/proxy-log-level").body
        assert harness.call("PUT", "/proxy-log-level?for=0.05", b"debug").status == 204
        assert harness.call("PUT", "/proxy-log-level?for=0.1", b"warn").status == 204  # replaces the first
        await asyncio.sleep(0.3)
        assert harness.call("GET", "/proxy-log-level").body == original

    asyncio.run(scenario())
