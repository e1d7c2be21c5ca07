"""The data side of tap: stream client (fan-in), bounded store, filter language, renderers, capture,
HAR export and the `top` aggregation. No Textual and no CLI here: the TUI and the commands build on it.
"""
