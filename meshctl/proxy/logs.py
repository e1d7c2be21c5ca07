"""Proxy logging: one line per event on stderr, values escaped, levels changeable at run time.

A level spec is a default level plus optional per-logger overrides, comma separated:
"info", "warn,meshctl.proxy.h1.downstream=debug". The admin endpoint reads and sets it.
"""

from __future__ import annotations

import logging
import sys

from meshctl.logs import format_level_spec, parse_level_spec

__all__ = ["OneLineFormatter", "get_log_level", "parse_level_spec", "set_log_level", "setup_logging"]

ROOT = "meshctl"

_current = "info"
_overridden: set[str] = set()


class OneLineFormatter(logging.Formatter):
    """Escapes CR/LF (and other control bytes) so a peer-supplied value cannot forge log lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.encode("unicode_escape", "backslashreplace").decode("ascii") if _needs_escape(text) else text


def _needs_escape(text: str) -> bool:
    return any(c < " " and c != "\t" for c in text) or "\x7f" in text


def set_log_level(spec: str) -> None:
    """Apply a level spec; on bad syntax raise ValueError and change nothing."""
    global _current
    default, overrides = parse_level_spec(spec)
    logging.getLogger(ROOT).setLevel(default)
    for name in _overridden - set(overrides):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in overrides.items():
        logging.getLogger(name).setLevel(level)
    _overridden.clear()
    _overridden.update(overrides)
    _current = format_level_spec(default, overrides)


def get_log_level() -> str:
    return _current


def setup_logging(spec: str, component: str = "proxy") -> None:
    """stderr handler with one line per event; `spec` as for set_log_level (falls back to info)."""
    handler = logging.StreamHandler(sys.stderr)
    line = f"%(asctime)s.%(msecs)03d %(levelname)s {component} %(name)s: %(message)s"
    handler.setFormatter(OneLineFormatter(line, "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger(ROOT)
    root.handlers[:] = [handler]
    root.propagate = False
    try:
        set_log_level(spec)
    except ValueError as exc:
        set_log_level("info")
        logging.getLogger(f"{ROOT}.proxy").warning("bad log level %r, using info: %s", spec, exc)
