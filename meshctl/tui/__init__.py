"""The Textual TUI of `meshctl tap --tui`: a live request list, detail, filter bar, top paths and latency
per route over a `meshctl.tapping` store. Textual is imported only when the TUI starts (`app.run_tui`).

    model.py    what is shown, updated once a frame from the store (no Textual)
    export.py   the shown requests to JSONL or HAR (no Textual)
    app.py      the App: keys, the frame timer, the views;  widgets/  one widget per file
"""
