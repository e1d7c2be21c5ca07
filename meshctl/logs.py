"""Log levels as every meshctl process and the CLI spell them: one parser, one set of names.

A spec is a default level and optional per-logger levels, comma separated, in any order:
"info", "warn,meshctl.proxy.h1.downstream=debug". The proxy, the control plane and `meshctl log-level`
all read it here, so a spec one accepts the others accept too.
"""

from __future__ import annotations

import logging

OFF = logging.CRITICAL + 10
LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "off": OFF}  # fmt: skip
NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error", OFF: "off"}


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


def format_level_spec(default: int, overrides: dict[str, int]) -> str:
    """The canonical text of a parsed spec (what GET /proxy-log-level answers)."""
    return ",".join([NAMES.get(default, "info")] + [f"{n}={NAMES.get(v, 'info')}" for n, v in overrides.items()])
