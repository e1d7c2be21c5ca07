"""JSONL captures: `--output-file` writes every event shown, one JSON object per line (the `-o json`
format), and `--input-file` reads them back for an offline replay through the same filters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from meshctl.errors import UsageError
from meshctl.tapping.codec import CodecError, from_json, to_json
from meshctl.tapping.events import TapEvent


def dumps(event: TapEvent) -> str:
    """One capture line (without the newline): compact, keys in a stable order."""
    return json.dumps(to_json(event), ensure_ascii=False, separators=(",", ":"))


class CaptureWriter:
    """Appends events to a JSONL file; flushed on every line so a killed run loses at most one line."""

    def __init__(self, path: Path) -> None:
        try:
            self._file: TextIO = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}", hint="pick a writable path") from None
        self.path = path
        self.count = 0

    def write(self, event: TapEvent) -> None:
        self._file.write(dumps(event) + "\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        self._file.close()


def read_capture(path: Path | str, stream: TextIO | None = None) -> Iterator[TapEvent]:
    """The events of a capture ('-': `stream`, i.e. stdin); UsageError naming the line of a bad one."""
    name = str(path)
    try:
        source = stream if name == "-" and stream is not None else Path(name).open(encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(
            f"cannot read {name}: {exc.strerror or exc}", hint="give a file written by --output-file"
        ) from None
    try:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                yield from_json(json.loads(line))
            except (json.JSONDecodeError, CodecError) as exc:
                raise UsageError(
                    f"{name}, line {number}: not a tap event: {exc}",
                    hint="captures are the JSON lines `meshctl tap --output-file` writes",
                ) from None
    finally:
        if source is not stream:
            source.close()
