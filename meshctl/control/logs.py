"""Logging of the control plane: one line per event on stderr, level changeable at run time.

The level syntax is the proxy's: "info", or a default followed by per-logger levels such as
"warn,meshctl.control.discovery=debug".
"""

from __future__ import annotations

import logging
import sys

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_current = "info"
_overridden: set[str] = set()


def configure_logging(spec: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    set_log_level(spec)


def parse_log_level(spec: str) -> tuple[int, dict[str, int]]:
    """(default level, {logger: level}); ValueError naming the bad part."""
    parts = [part.strip() for part in spec.split(",")]
    if not parts or not parts[0] or "=" in parts[0]:
        raise ValueError(f"expected a default level first (one of {', '.join(LEVELS)}), got {spec!r}")
    default = _level(parts[0])
    loggers: dict[str, int] = {}
    for part in parts[1:]:
        name, sep, level = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected logger=level, got {part!r}")
        loggers[name.strip()] = _level(level.strip())
    return default, loggers


def _level(text: str) -> int:
    try:
        return LEVELS[text.lower()]
    except KeyError:
        raise ValueError(f"unknown level {text!r} (one of {', '.join(LEVELS)})") from None


def set_log_level(spec: str) -> None:
    """Apply a level spec atomically: a bad spec raises ValueError and changes nothing."""
    global _current
    default, loggers = parse_log_level(spec)
    logging.getLogger().setLevel(default)
    for name in _overridden - set(loggers):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)
    _overridden.clear()
    _overridden.update(loggers)
    _current = spec.strip()


def get_log_level() -> str:
    return _current
