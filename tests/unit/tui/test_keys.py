"""The TUI driven with keys as a user would: filter, pause, detail, top, export, follow, quit."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from textual.widgets import Input

from meshctl.tapping.capture import read_capture
from meshctl.tapping.store import TapStore
from meshctl.tui.app import TapApp
from meshctl.tui.screens import ExportScreen, HelpScreen
from tests.unit.tapping.test_har_top import validate_har
from tests.unit.tui.feed import filled_store, steady

SIZE = (120, 32)


def test_filter_pause_detail_top_and_back() -> None:
    async def scenario() -> None:
        store = filled_store(30)
        app = TapApp(store)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert len(app.view.rows) == len(store) == 34

            await pilot.press("slash", *"method=DELETE", "enter")
            assert {e.request.method for e in app.view.rows if e.request} == {"DELETE"}
            assert len(app.view.rows) == 6 and app.view.keep.text == "method=DELETE"
            assert app.focused is app.requests

            await pilot.press("slash", *"method=", "enter")  # a bad expression keeps the bar open, filter unchanged
            assert app.filter_bar.has_class("-open") and "a value is missing" in str(app.filter_bar.message.render())
            assert app.view.keep.text == "method=DELETE"
            await pilot.press("q")  # typed into the bar, not a quit
            assert app.is_running and app.filter_bar.input.value == "method=q"
            await pilot.press("escape")
            assert not app.filter_bar.has_class("-open") and app.focused is app.requests

            await pilot.press("space")
            assert app.view.paused
            for event in steady(5, first_id=500):  # more DELETEs and others arrive while paused
                store.add(event)
            await pilot.pause(0.3)
            assert len(app.view.rows) == 6
            await pilot.press("space")
            await pilot.pause()
            assert not app.view.paused and len(app.view.rows) == 7

            await pilot.press("k", "enter")
            assert app.mode == "detail" and app.focused is app.detail
            assert app.detail._shown[0] is app.view.rows[-2]
            await pilot.press("escape")
            assert app.mode == "list"

            await pilot.press("t")
            assert app.mode == "top" and app.top.table.row_count == len(app.view.top.rows())
            await pilot.press("escape", "question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

            await pilot.press("q")
            await pilot.pause()
            assert not app.is_running

    asyncio.run(scenario())


def export_to(tmp_path: Path, name: str, keys: tuple[str, ...] = ()) -> tuple[TapApp, Path]:
    path = tmp_path / name

    async def scenario() -> TapApp:
        app = TapApp(filled_store(12))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(*keys, "e")
            assert isinstance(app.screen, ExportScreen)
            app.screen.query_one(Input).value = str(path)
            await pilot.press("enter")
            await pilot.pause()
            assert not isinstance(app.screen, ExportScreen)
        return app

    return asyncio.run(scenario()), path


def test_export_writes_the_shown_requests_as_jsonl(tmp_path: Path) -> None:
    app, path = export_to(tmp_path, "shown.jsonl", ("slash", *"method=GET", "enter"))
    replayed = TapStore()
    for event in read_capture(path):
        replayed.add(event)
    assert [(e.instance, e.id) for e in replayed.exchanges()] == [(e.instance, e.id) for e in app.view.rows]
    assert {e.request.method for e in replayed.exchanges() if e.request} == {"GET"}


def test_export_writes_har(tmp_path: Path) -> None:
    app, path = export_to(tmp_path, "shown.har")
    document = json.loads(path.read_text())
    assert validate_har(document) == []
    log = document["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "meshctl"
    assert len(log["entries"]) == len(app.view.rows) == 16
    assert {"request", "response", "timings", "_meshctl"} <= set(log["entries"][0])


def test_export_failure_is_one_line_and_the_app_stays(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = TapApp(filled_store(3))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("e")
            app.screen.query_one(Input).value = str(tmp_path / "no" / "such" / "dir.jsonl")
            await pilot.press("enter")
            await pilot.pause()
            notes = list(app._notifications)
            assert app.is_running and len(notes) == 1 and notes[0].severity == "error"
            assert "cannot write" in notes[0].message and "\n" not in notes[0].message

    asyncio.run(scenario())


def test_rows_arrive_from_the_stream_thread_and_quit_stops_it() -> None:
    stopped = threading.Event()

    def stream(store: TapStore) -> None:
        for event in steady(200):
            if stopped.is_set():
                return
            store.add(event)
        stopped.wait(10)

    async def scenario() -> None:
        store = TapStore()
        app = TapApp(store, start_stream=lambda: stream(store), stop_stream=stopped.set)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if len(app.view.rows) == 200:
                    break
            assert len(app.view.rows) == 200
            assert app.requests.follow and app.requests.selected is app.view.rows[-1]
            await pilot.press("up")  # moving up stops following; new rows no longer move the cursor
            chosen = app.requests.selected
            assert not app.requests.follow and chosen is app.view.rows[-2]
            await pilot.press("f")
            assert app.requests.follow and app.requests.selected is app.view.rows[-1]
            await pilot.press("enter")  # reading one request stops following, so it stays on screen
            assert app.mode == "detail" and not app.requests.follow
            await pilot.press("q")
        assert stopped.is_set()
        assert app._stream_thread is not None and not app._stream_thread.is_alive()

    asyncio.run(scenario())


def test_a_stream_that_ends_by_itself_says_so_and_the_rows_stay() -> None:
    async def scenario() -> None:
        store = TapStore()
        app = TapApp(store, start_stream=lambda: [store.add(e) for e in steady(5)], stop_stream=lambda: None)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(40):
                await pilot.pause(0.05)
                if app.stream_ended and app._notifications:
                    break
            await pilot.pause(0.1)
            assert len(app.view.rows) == 5 and "ENDED" in str(app.status.render())
            notes = list(app._notifications)
            assert len(notes) == 1 and notes[0].title == "tap ended"

    asyncio.run(scenario())
