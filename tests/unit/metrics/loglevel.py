"""A log-level holder with the proxy's filter syntax, for exercising the admin endpoint."""

from __future__ import annotations

import re

_DIRECTIVE = re.compile(r"(?:[A-Za-z_][\w.]*=)?(?:trace|debug|info|warn|error|off)")


class LogLevel:
    def __init__(self, level: str = "info") -> None:
        self.level = level

    def get(self) -> str:
        return self.level

    def set(self, level: str) -> None:
        for directive in level.split(","):
            if not _DIRECTIVE.fullmatch(directive.strip()):
                raise ValueError(f"invalid log directive {directive.strip()!r}")
        self.level = level
