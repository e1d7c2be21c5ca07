"""Printing once or refreshing (`--watch`) off a terminal: whole frames, notes on stderr, Ctrl-C ends it."""

from __future__ import annotations

import io

import pytest

from meshctl.cli import sources, watch
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.errors import UsageError


def _cli(debug: bool = False) -> tuple[CliContext, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return CliContext(stdout=out, stderr=err, debug=debug), out, err


def test_one_table_frame_and_its_notes() -> None:
    cli, out, err = _cli()
    watch.show(cli, lambda: watch.Frame("A   B\n", None, ["a note"]), watch=False, interval="2s")
    assert out.getvalue() == "A   B\n" and err.getvalue() == "a note\n"


def test_one_json_frame_is_indented() -> None:
    cli, out, _ = _cli()
    watch.show(cli, lambda: watch.Frame("", {"rps": 1.5}, []), watch=False, interval="2s")
    assert out.getvalue() == '{\n  "rps": 1.5\n}\n'


def test_watch_off_a_terminal_prints_whole_frames_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    cli, out, _ = _cli()
    sleeps: list[float] = []
    monkeypatch.setattr("meshctl.cli.watch.time.sleep", sleeps.append)
    frames = iter([{"n": 1}, {"n": 2}])

    def produce() -> watch.Frame:
        document = next(frames, None)
        if document is None:
            raise KeyboardInterrupt
        return watch.Frame("", document, [])

    watch.show(cli, produce, watch=True, interval="3s")
    assert out.getvalue() == '{"n":1}\n{"n":2}\n'  # one JSON document per line
    assert sleeps == [3.0, 3.0]


def test_watch_interval_is_checked() -> None:
    cli, _, _ = _cli()
    with pytest.raises(UsageError):
        watch.show(cli, lambda: watch.Frame("", None, []), watch=True, interval="0s")


def test_prometheus_url_flag_must_be_http() -> None:
    cli, _, _ = _cli()
    assert sources.prometheus_url(cli, "http://127.0.0.1:9090/") == "http://127.0.0.1:9090"
    with pytest.raises(UsageError):
        sources.prometheus_url(cli, "127.0.0.1:9090")


def test_watch_off_a_terminal_streams_yaml_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    cli, out, _ = _cli()
    monkeypatch.setattr("meshctl.cli.watch.time.sleep", lambda _: None)
    frames = iter([{"n": 1}, {"n": 2}])

    def produce() -> watch.Frame:
        document = next(frames, None)
        if document is None:
            raise KeyboardInterrupt
        return watch.Frame("", document, [])

    watch.show(cli, produce, watch=True, interval="2s", output=OutputFormat.YAML)
    assert out.getvalue() == "---\nn: 1\n---\nn: 2\n"  # a stream of YAML documents


def test_one_yaml_frame() -> None:
    cli, out, _ = _cli()
    watch.show(cli, lambda: watch.Frame("", {"rps": 1.5}, []), watch=False, interval="2s", output=OutputFormat.YAML)
    assert out.getvalue() == "rps: 1.5\n"
