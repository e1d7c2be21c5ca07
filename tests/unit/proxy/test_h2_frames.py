"""Received frames are named, not serialised and hex-encoded, when h2 builds its trace line."""

from __future__ import annotations

from unittest import mock

from hyperframe.frame import DataFrame, Frame

from meshctl.proxy.h2.frames import use_cheap_frame_repr


def test_repr_of_a_large_data_frame_does_not_serialise_it() -> None:
    frame = DataFrame(stream_id=3, data=b"x" * 1_000_000)
    frame.flags.add("END_STREAM")
    before = Frame.__repr__
    try:
        use_cheap_frame_repr()
        with mock.patch.object(DataFrame, "serialize_body", side_effect=AssertionError("serialised")):
            text = repr(frame)
    finally:
        Frame.__repr__ = before  # type: ignore[method-assign]
    assert text == "DataFrame(stream_id=3, flags=['END_STREAM'])"
    assert "serialised" not in text and len(text) < 100
