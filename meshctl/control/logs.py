"""Logging of the control plane: one line per event on stderr, level changeable at run time.

The level syntax is the proxy's and the CLI's (meshctl.logs): "info", or a default and per-logger levels
such as "warn,meshctl.control.discovery=debug".
"""

from __future__ import annotations

import logging
import sys

from meshctl.logs import format_level_spec, parse_level_spec

_current = "info"
_overridden: set[str] = set()


def configure_logging(spec: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    set_log_level(spec)


def parse_log_level(spec: str) -> tuple[int, dict[str, int]]:
    """(default level, {logger: level}); ValueError naming the bad part (the one parser of meshctl.logs)."""
    return parse_level_spec(spec)


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
    _current = format_level_spec(default, loggers)


def get_log_level() -> str:
    return _current
