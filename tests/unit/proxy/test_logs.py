"""Log level specs and one-line, escaped log records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from meshctl.proxy.logs import OneLineFormatter, get_log_level, parse_level_spec, set_log_level


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    yield
    set_log_level("info")


def test_level_specs() -> None:
    assert parse_level_spec("info") == (logging.INFO, {})
    expected = (logging.WARNING, {"meshctl.proxy.h1.downstream": logging.DEBUG})
    assert parse_level_spec("warn,meshctl.proxy.h1.downstream=debug") == expected
    set_log_level("warn,meshctl.proxy.h1.downstream=debug")
    assert get_log_level() == "warn,meshctl.proxy.h1.downstream=debug"
    assert logging.getLogger("meshctl.proxy.h1.downstream").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("meshctl.proxy.h1.codec").getEffectiveLevel() == logging.WARNING
    set_log_level("error")
    assert logging.getLogger("meshctl.proxy.h1.downstream").getEffectiveLevel() == logging.ERROR


@pytest.mark.parametrize("spec", ["", "loud", "info,", "info,debug", "=debug", "a b=info", "x=loud"])
def test_bad_specs_change_nothing(spec: str) -> None:
    set_log_level("debug")
    with pytest.raises(ValueError):
        set_log_level(spec)
    assert get_log_level() == "debug"


def test_records_are_one_line() -> None:
    record = logging.LogRecord("meshctl.proxy", logging.INFO, __file__, 1, "host %s", ("evil\r\nforged: line",), None)
    line = OneLineFormatter("%(message)s").format(record)
    assert "\n" not in line and "\r" not in line
    assert "evil\\r\\nforged" in line
