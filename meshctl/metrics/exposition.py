"""Prometheus text exposition format 0.0.4: escaping, label sets, sample lines.

Label values are often attacker-controlled (Host headers, :authority). They are cleaned once when a
series is created — bounded length, valid UTF-8 — and escaped so no value can end a label, a line or
a sample early.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A hostname is at most 253 characters; with a port that is 259. Longer values are cut so that a
# client cannot make one series cost kilobytes.
MAX_LABEL_VALUE_LEN = 256
TRUNCATED_MARK = "[TRUNCATED]"

# C0/C1 control characters are legal in the format but can drive a terminal that later shows the
# value (`meshctl routes`, a curl in a shell), so they are spelled out as text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def clean_label_value(value: str) -> str:
    """Spell out control characters, make the value valid UTF-8 (lone surrogates become text) and
    bound its length. Called once per new series, never per request."""
    value = _truncate(value)  # first, so a huge value costs no more than a short one
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if not value.isprintable():
        value = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", value)
    return _truncate(value)


def _truncate(value: str) -> str:
    if len(value) <= MAX_LABEL_VALUE_LEN:
        return value
    return value[: MAX_LABEL_VALUE_LEN - len(TRUNCATED_MARK)] + TRUNCATED_MARK


def escape_label_value(value: str) -> str:
    return value.translate(_LABEL_ESCAPES)


def escape_help(text: str) -> str:
    return text.translate(_HELP_ESCAPES)


def label_set(pairs: Iterable[tuple[str, str]]) -> str:
    """`a="x",b="y"` (no braces, no trailing comma) from already-cleaned values."""
    return ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)


def format_value(value: float) -> str:
    """Sample values as Go's strconv parses them: ints plain, +Inf/-Inf/NaN spelled out."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def header(out: list[str], name: str, kind: str, help_text: str) -> None:
    """Append the HELP and TYPE lines that open a metric family."""
    out.append(f"# HELP {name} {escape_help(help_text)}")
    out.append(f"# TYPE {name} {kind}")


def sample(out: list[str], name: str, labels: str, value: float) -> None:
    out.append(f"{name}{{{labels}}} {format_value(value)}" if labels else f"{name} {format_value(value)}")
