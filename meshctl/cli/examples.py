"""The `Examples:` section of each command's help, as kubectl and linkerd print it."""

from __future__ import annotations


def examples(*pairs: tuple[str, str]) -> str:
    """An epilog of commented command lines; a `\\b` before each keeps click from re-wrapping it."""
    lines = ["Examples:"]
    for comment, command in pairs:
        lines += ["", "\b", f"  # {comment}", f"  {command}"]
    return "\n".join(lines) + "\n"
