"""Python bytecodes executed by a piece of code, counted by a tracer: a figure of its Python work that the
machine's load does not move (µs per request does, by tens of percent on a shared machine)."""

from __future__ import annotations

import sys
from collections.abc import Collection
from types import FrameType
from typing import Any


class BytecodeCounter:
    """`with BytecodeCounter(skip) as counted: ...` then `counted.executed`; frames of the files in `skip`
    (the benchmark's own driver, transports and loop turns) are not counted, nor is what they call directly."""

    def __init__(self, skip: Collection[str]) -> None:
        self.executed = 0
        self._skip = frozenset(skip)

    def _count(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            self.executed += 1
        return self._count

    def _enter(self, frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename in self._skip:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._count

    def __enter__(self) -> BytecodeCounter:
        sys.settrace(self._enter)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)
