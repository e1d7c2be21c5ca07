"""Small pieces of the control link and the control plane: backoff, renewal time, log levels, metrics."""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from meshctl.control.config import Address
from meshctl.control.logs import get_log_level, parse_log_level, set_log_level
from meshctl.control.metrics import ControlMetrics
from meshctl.proxy.control_client import Backoff, _target, refresh_delay


def test_backoff_doubles_with_jitter_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(0.5, 30.0)
    delays = [backoff.next() for _ in range(10)]
    assert 0.4 <= delays[0] <= 0.6
    assert 0.8 <= delays[1] <= 1.2
    assert all(d <= 30.0 for d in delays) and delays[-1] >= 24.0
    backoff.reset()
    assert backoff.next() <= 0.6


def test_refresh_at_70_percent_clamped_to_10s_and_24h() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert refresh_delay(now + timedelta(hours=24), now) == pytest.approx(0.7 * 86400)
    assert refresh_delay(now + timedelta(seconds=5), now) == 10.0
    assert refresh_delay(now - timedelta(hours=1), now) == 10.0  # expired: keep trying, not in a loop
    assert refresh_delay(now + timedelta(days=30), now) == 86400.0


def test_control_address_forms() -> None:
    assert _target("127.77.0.2:8086") == "127.77.0.2:8086"
    assert _target(("127.77.0.2", 8086)) == "127.77.0.2:8086"
    assert _target(Address("127.77.0.2", 8086)) == "127.77.0.2:8086"


def test_log_level_syntax() -> None:
    assert parse_log_level("warn,meshctl.control.discovery=debug") == (
        logging.WARNING,
        {"meshctl.control.discovery": logging.DEBUG},
    )
    for bad, message in [
        ("loud", "unknown log level 'loud'"),
        ("=debug", "invalid logger name ''"),
        ("info,meshctl", "unknown log level 'meshctl'"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_log_level(bad)


def test_set_log_level_is_all_or_nothing() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        set_log_level("error,meshctl.control.store=debug")
        assert root.level == logging.ERROR
        assert logging.getLogger("meshctl.control.store").level == logging.DEBUG
        with pytest.raises(ValueError):
            set_log_level("info,meshctl.control.store=chatty")
        assert get_log_level() == "error,meshctl.control.store=debug"
        set_log_level("info")
        assert logging.getLogger("meshctl.control.store").level == logging.NOTSET
    finally:
        set_log_level("info")
        root.setLevel(before)


def test_metrics_render() -> None:
    metrics = ControlMetrics()
    metrics.certificates_issued = 3
    metrics.certify_refused["permission_denied"] += 2
    metrics.gauges = lambda: (42, 1)
    text = metrics.render().decode()
    assert "control_certificates_issued_total 3\n" in text
    assert 'control_certify_refused_total{code="permission_denied"} 2\n' in text
    assert "control_snapshot_version 42\n" in text
    assert "control_resource_files_invalid 1\n" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_metrics_pass_promtool() -> None:
    metrics = ControlMetrics()
    metrics.certify_refused["unauthenticated"] += 1
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=metrics.render(), capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
