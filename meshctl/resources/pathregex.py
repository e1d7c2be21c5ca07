"""Route path regexes in RE2 syntax, as Linkerd (Go regexp), Envoy and Prometheus use.

RE2 matches in time linear in the path's length whatever the pattern, so no route (`/(a+)+`) can make
a proxy spend seconds on one request. The price is RE2's syntax: no backreferences, no lookarounds.
`meshctl apply` compiles every pattern here, so a pattern the proxies cannot run is refused up front.
"""

from __future__ import annotations

from typing import Any, Protocol


class PathRegex(Protocol):
    def fullmatch(self, text: str) -> Any: ...


def compile_path_regex(pattern: str) -> PathRegex:
    """The compiled pattern; ValueError with RE2's reason when RE2 does not accept it."""
    import re2  # the resources package is imported by the CLI's light commands: load the extension on use

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        compiled: PathRegex = re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(_reason(exc)) from None
    return compiled


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "not accepted"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason)
