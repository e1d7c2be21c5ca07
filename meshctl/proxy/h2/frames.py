"""A cheap repr for received HTTP/2 frames.

h2 (4.x) logs every received frame with `logger.trace("Received frame: %s", repr(frame))`: the repr is
built before the (no-op) logger sees it, and hyperframe's repr re-serialises the frame's body and
hex-encodes all of it: about 5 % of an in-memory request/response with a 1 KiB body (cProfile, both
ends), and more the larger the DATA frames (a discovery snapshot is hundreds of KiB). The proxy never logs
frames, so the repr names the frame and its flags and does no work beyond that.
"""

from __future__ import annotations

from hyperframe.frame import Frame


def _short_repr(frame: Frame) -> str:
    return f"{type(frame).__name__}(stream_id={frame.stream_id}, flags={sorted(frame.flags)})"


def use_cheap_frame_repr() -> None:
    """Install the cheap repr (idempotent); called once at start-up by processes that speak HTTP/2."""
    Frame.__repr__ = _short_repr  # type: ignore[method-assign]
