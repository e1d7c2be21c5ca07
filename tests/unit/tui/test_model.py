"""RequestView and export: what the TUI shows, without Textual — frames, filters, bounds, pause, top, export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from meshctl.errors import UsageError
from meshctl.tapping.capture import read_capture
from meshctl.tapping.events import RequestInit, ResponseEnd
from meshctl.tapping.filter import parse_filter
from meshctl.tapping.store import TapStore
from meshctl.tui.export import export
from meshctl.tui.model import MAX_ROUTES, RequestView
from tests.unit.tapping.scenario import T0
from tests.unit.tui.feed import filled_store, request_events, steady


def ids(view: RequestView) -> list[int]:
    return [e.id for e in view.rows]


def test_the_subscriber_only_marks_and_a_frame_folds_changes_in() -> None:
    store = TapStore()
    view = RequestView(store)
    assert view.refresh() and ids(view) == []
    for event in steady(3):
        store.add(event)
    assert ids(view) == [] and view.dirty  # nothing shown until the next frame
    assert view.refresh() and ids(view) == [100, 101, 102]
    assert not view.refresh()  # no change, no redraw


def test_a_response_filter_shows_a_request_only_once_it_is_decided() -> None:
    store = TapStore()
    view = RequestView(store, parse_filter("status=5xx"))
    request, response, end = request_events("p", 1, 3, T0)  # shape 3: POST /books/new → 503
    store.add(request)
    store.add(response)
    view.refresh()
    assert ids(view) == []  # undecided until the end: no row that appears and vanishes
    store.add(end)
    view.refresh()
    assert ids(view) == [1]
    for event in request_events("p", 2, 0, T0):  # a 200 never shows
        store.add(event)
    view.refresh()
    assert ids(view) == [1]


def test_top_and_charts_count_each_ended_request_once() -> None:
    store = TapStore()
    view = RequestView(store)
    for event in steady(10):
        store.add(event)
        view.refresh()  # a frame after every event: ends are still counted once
    assert view.top.total == 10
    assert sum(r.count for r in view.top.rows()) == 10
    assert sum(r.count for r in view.charts.routes.values()) == 10
    route = view.charts.routes[("webapp-0", "POST /books/new")]
    assert route.count == 2 and route.percentile(0.5) >= 120_000


def test_rows_stay_bounded_and_the_trim_is_counted() -> None:
    store = TapStore(capacity=50)
    view = RequestView(store, limit=20)
    view.refresh()
    for n, event in enumerate(steady(45)):
        store.add(event)
        if n % 3 == 2:  # a frame after each request's three events
            view.refresh()
    assert ids(view) == list(range(125, 145)) and view.trimmed == 25


def test_too_many_changes_between_frames_rebuild_from_the_store() -> None:
    store = TapStore(capacity=100)
    view = RequestView(store, limit=10)
    view.refresh()
    generation = view.generation
    for event in steady(30):  # 30 changed requests > limit: pending overflows
        store.add(event)
    assert view.waiting <= 10
    view.refresh()
    assert view.generation == generation + 1 and ids(view) == list(range(120, 130))
    assert view.top.total == 30  # rebuilt from every ended request in the store


def test_pause_freezes_the_rows_and_resume_catches_up() -> None:
    store = TapStore()
    view = RequestView(store)
    view.refresh()
    view.pause(True)
    for event in steady(4):
        store.add(event)
    assert not view.refresh() and ids(view) == [] and view.waiting == 4
    view.pause(False)
    view.refresh()
    assert ids(view) == [100, 101, 102, 103]


def test_a_new_filter_applies_to_what_the_store_holds() -> None:
    store = filled_store(20)
    view = RequestView(store)
    view.refresh()
    view.set_filter(parse_filter("method=DELETE"))
    assert {e.request.method for e in view.rows if e.request} == {"DELETE"} and len(view.rows) == 4
    view.set_filter(parse_filter(""))
    assert len(view.rows) == len(store)


def test_routes_charted_are_bounded() -> None:
    store = TapStore()
    view = RequestView(store)
    for n in range(MAX_ROUTES + 5):
        request, response, end = request_events("p", n, 0, T0)
        assert isinstance(request, RequestInit)
        store.add(replace(request, route=f"GET /r{n}"))
        store.add(response)
        store.add(end)
    view.refresh()
    assert len(view.charts.routes) == MAX_ROUTES and view.charts.untracked == 5


def test_export_jsonl_replays_to_the_same_exchanges(tmp_path: Path) -> None:
    store = filled_store(5)
    view = RequestView(store, parse_filter("method=GET"))
    view.refresh()
    kind, count = export(tmp_path / "shown.jsonl", view.rows)
    assert (kind, count) == ("JSONL", len(view.rows))
    replayed = TapStore()
    for event in read_capture(tmp_path / "shown.jsonl"):
        replayed.add(event)
    assert [(e.instance, e.id, e.status, e.latency_us) for e in replayed.exchanges()] == [
        (e.instance, e.id, e.status, e.latency_us) for e in view.rows
    ]


def test_export_har_holds_the_ended_requests(tmp_path: Path) -> None:
    store = filled_store(5)
    request, _, _ = request_events("webapp-0", 999, 0, T0)
    store.add(request)  # in flight: HAR has no entry for it
    view = RequestView(store)
    view.refresh()
    kind, count = export(tmp_path / "shown.HAR", view.rows)
    document = json.loads((tmp_path / "shown.HAR").read_text())
    ended = [e for e in view.rows if isinstance(e.end, ResponseEnd)]
    assert kind == "HAR" and count == len(ended) == len(view.rows) - 1
    assert document["log"]["version"] == "1.2" and len(document["log"]["entries"]) == count


def test_export_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        export(tmp_path / "missing" / "x.jsonl", [])
    assert "cannot write" in caught.value.message and caught.value.hint


def test_a_body_preview_cannot_drive_the_terminal() -> None:
    from meshctl.tui.widgets.detail import printable

    assert printable(b"a\x1b[31mb\r\n\tc\xff\x00\x7f") == "a\\x1b[31mb\\x0d\n\tc\\xff\\x00\\x7f"
    assert printable("née\n".encode()) == "née\n"


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_status_and_latency_survive_a_narrow_terminal(width: int) -> None:
    from meshctl.tui.widgets.request_list import header

    titles = header(width).plain.split()
    assert len(header(width).plain) <= width
    assert {"Source", "Destination", "Method", "Path", "Status", "Latency"} <= set(titles)
    assert ("Identity" in titles) == (width >= 120)
