"""Proxy logging: one line per event on stderr, values escaped, levels changeable at run time.

A level spec is a default level plus optional per-logger overrides, comma separated:
"info", "warn,meshctl.proxy.h1.downstream=debug". The admin endpoint reads and sets it.
"""

from __future__ import annotations

import logging
import sys

ROOT = "meshctl"
LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "off": logging.CRITICAL + 10}  # fmt: skip
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
          logging.CRITICAL + 10: "off"}  # fmt: skip

_current = "info"
_overridden: set[str] = set()


class OneLineFormatter(logging.Formatter):
    """Escapes CR/LF (and other control bytes) so a peer-supplied value cannot forge log lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.encode("unicode_escape", "backslashreplace").decode("ascii") if _needs_escape(text) else text


def _needs_escape(text: str) -> bool:
    return any(c < " " and c != "\t" for c in text) or "\x7f" in text


def parse_level_spec(spec: str) -> tuple[int, dict[str, int]]:
    """(default level, {logger: level}); ValueError naming the bad part."""
    parts = [p.strip() for p in spec.strip().split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise ValueError(f"empty log level in {spec!r}")
    default: int | None = None
    overrides: dict[str, int] = {}
    for part in parts:
        name, sep, level = part.partition("=")
        if not sep:
            name, level = "", part
        level_no = LEVELS.get(level.strip().lower())
        if level_no is None:
            raise ValueError(f"unknown log level {level.strip()!r} (use one of {', '.join(LEVELS)})")
        name = name.strip()
        if sep and (not name or not all(seg.isidentifier() for seg in name.split("."))):
            raise ValueError(f"invalid logger name {name!r}")
        if not sep:
            if default is not None:
                raise ValueError(f"more than one default level in {spec!r}")
            default = level_no
        else:
            overrides[name] = level_no
    return (logging.INFO if default is None else default), overrides


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
    _current = ",".join([_NAMES.get(default, "info")] + [f"{n}={_NAMES.get(v, 'info')}" for n, v in overrides.items()])


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
