"""Field readers for CRD-shaped documents: typed values out, problems with a field path in.

Every reader takes the value, its path ("spec.routes[0].timeout") and the list collecting problems, so
one pass reports every mistake in a document instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # "spec.routes[0].timeout"; "" for the whole document
    message: str  # what is expected, and what was found

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    return f"{path}[{index}]"


def describe(value: object) -> str:
    """How a found value is named in messages: strings quoted, containers by kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def mapping(value: object, path: str, problems: list[Problem], what: str = "a mapping") -> dict[str, object] | None:
    if not isinstance(value, dict):
        problems.append(Problem(path, f"expected {what}, got {describe(value)}"))
        return None
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        problems.append(Problem(path, f"expected string keys, got {describe(bad[0])}"))
        return None
    return value


def known_keys(
    node: dict[str, object],
    path: str,
    problems: list[Problem],
    allowed: Collection[str],
    ignored: Collection[str] = (),
) -> None:
    """Refuse unknown keys (a typo must not silently drop a setting), suggesting the closest name."""
    for key in node:
        if key in allowed or key in ignored:
            continue
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
        problems.append(Problem(child(path, key), f"unknown field{hint}"))


def sequence(value: object, path: str, problems: list[Problem], what: str = "a list") -> list[object] | None:
    if not isinstance(value, list):
        problems.append(Problem(path, f"expected {what}, got {describe(value)}"))
        return None
    return value


def string(value: object, path: str, problems: list[Problem], what: str = "a string") -> str | None:
    if not isinstance(value, str) or not value:
        problems.append(Problem(path, f"expected {what}, got {describe(value)}"))
        return None
    return value


def boolean(value: object, path: str, problems: list[Problem]) -> bool | None:
    if not isinstance(value, bool):
        problems.append(Problem(path, f"expected true or false, got {describe(value)}"))
        return None
    return value


def integer(
    value: object,
    path: str,
    problems: list[Problem],
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    in_range = range_text(minimum, maximum)
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(Problem(path, f"expected an integer{in_range}, got {describe(value)}"))
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        problems.append(Problem(path, f"expected an integer{in_range}, got {value}"))
        return None
    return value


def number(value: object, path: str, problems: list[Problem], *, minimum: float = 0.0) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        problems.append(Problem(path, f"expected a number >= {minimum:g}, got {describe(value)}"))
        return None
    if value < minimum:
        problems.append(Problem(path, f"expected a number >= {minimum:g}, got {value!r}"))
        return None
    return float(value)


def range_text(minimum: float | None, maximum: float | None) -> str:
    """The bounds of a number as messages name them: " from 1 to 65535", " >= 0"."""
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


# Go's time.ParseDuration syntax, which Kubernetes resources (and Linkerd's ServiceProfile) use.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_EXAMPLE = 'a duration such as "300ms", "1.5s" or "1m30s"'


def parse_duration(text: str) -> float:
    """Seconds of a Go-style duration ("300ms", "1m30s"); ValueError when malformed."""
    position, total = 0, 0.0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            raise ValueError(text)
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(text)
    return total


def duration(value: object, path: str, problems: list[Problem]) -> float | None:
    """A strictly positive duration in seconds."""
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            pass
        else:
            if seconds > 0:
                return seconds
    problems.append(Problem(path, f"expected {DURATION_EXAMPLE}, got {describe(value)}"))
    return None
