"""Snapshots of the list, detail, filter, top and help views over a store of fixed events."""

from __future__ import annotations

import asyncio
import threading

import pytest

from meshctl.tui.app import TapApp
from tests.unit.tui.feed import filled_store
from tests.unit.tui.snapshot import SIZE, assert_matches, screenshot

VIEWS = {
    "list": (),
    "detail": ("g", "j", "enter"),  # the scenario's POST with both bodies captured and a 500
    "filter_error": ("slash", *"status=5xx and", "enter"),
    "filtered": ("slash", *"status=5xx or latency>=100ms", "enter"),
    "top": ("t",),
    "help": ("question_mark",),
    "paused": ("space", "k"),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view(name: str) -> None:
    quiet = threading.Event()  # a live stream that has nothing more to say: the views as during a tap
    app = TapApp(filled_store(30), target="deploy/webapp -n booksapp", match="to=deploy/books or to=deploy/webapp",
                 start_stream=lambda: quiet.wait(60), stop_stream=quiet.set)  # fmt: skip
    size = (120, 46) if name == "detail" else SIZE  # the detail down to the body previews
    svg = asyncio.run(screenshot(app, VIEWS[name], size))
    assert_matches(name, svg)
