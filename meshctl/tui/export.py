"""Export of the shown requests: JSONL (the capture format `meshctl tap --input-file` replays) or HAR 1.2.

The format follows the file name: `.har` writes HAR, anything else JSON lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from meshctl.errors import UsageError
from meshctl.tapping.capture import dumps
from meshctl.tapping.events import TapEvent
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.har import write_har


def events_of(exchange: Exchange) -> Iterator[TapEvent]:
    """An exchange's events in the order a proxy sends them."""
    for event in (exchange.request, exchange.request_body, exchange.response, exchange.response_body, exchange.end):
        if event is not None:
            yield event


def export(path: Path, exchanges: Sequence[Exchange]) -> tuple[str, int]:
    """Write `exchanges` to `path`; returns the format written and how many requests it holds."""
    if path.suffix.lower() == ".har":
        return "HAR", write_har(path, [e for e in exchanges if e.complete])
    try:
        with path.open("w", encoding="utf-8") as out:
            for exchange in exchanges:
                out.writelines(dumps(event) + "\n" for event in events_of(exchange))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", hint="pick a writable path") from None
    return "JSONL", len(exchanges)
