"""SVG snapshots of the TUI, compared with the files under __snapshots__/.

pytest-textual-snapshot does this too, but it pins syrupy 4.8, which requires pytest < 9, and this
project is on pytest 9; so the same method is here in a few lines: run the app headless at a fixed
size, press keys, export Textual's SVG screenshot, compare it byte for byte.
`MESHCTL_UPDATE_SNAPSHOTS=1 pytest tests/unit/tui` rewrites the files (review the diff before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import App
from textual.widgets import Input

SNAPSHOTS = Path(__file__).parent / "__snapshots__"
SIZE = (120, 32)


async def screenshot(app: App[None], keys: tuple[str, ...] = (), size: tuple[int, int] = SIZE) -> str:
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        for field in app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor would make every run differ
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        return app.export_screenshot()


def assert_matches(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("MESHCTL_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}: run with MESHCTL_UPDATE_SNAPSHOTS=1 and review it"
    expected = path.read_text(encoding="utf-8")
    if svg != expected:
        actual = path.with_suffix(".actual.svg")
        actual.write_text(svg, encoding="utf-8")
        raise AssertionError(f"{path.name} differs; see {actual.name} (MESHCTL_UPDATE_SNAPSHOTS=1 accepts it)")
