"""Trace context at the edge: the ingress makes sure every request carries B3 and W3C trace headers.

A request that arrives without any (`traceparent`, `b3`, `x-b3-traceid`) gets a new trace: a random
128-bit trace id and 64-bit span id, sampled, in all three forms — W3C `traceparent`, B3 single
`b3` and B3 multi `x-b3-*` — so an app finds it whichever library it uses. A request that carries one
form gets the others with the same ids; unreadable ones are left alone. Proxies forward these headers
unchanged, and an app passes them on to the calls it makes, so one trace id follows a request through
the mesh (and shows in tap with the request's headers). Only ingress listeners run this.
"""

from __future__ import annotations

import os

Headers = list[tuple[bytes, bytes]]
_NAMES = frozenset((b"traceparent", b"b3", b"x-b3-traceid", b"x-b3-spanid", b"x-b3-sampled",
                    b"x-b3-parentspanid"))  # fmt: skip
_HEX = frozenset(b"0123456789abcdef")


def _hex(value: bytes, *sizes: int) -> bool:
    return len(value) in sizes and frozenset(value) <= _HEX and value.strip(b"0") != b""


def ensure(headers: Headers) -> None:
    """Complete (or start) the trace context of a request entering the mesh, in place."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _NAMES:
            found[lower] = value.strip().lower()
    context = _read(found) if found else (os.urandom(16).hex().encode(), os.urandom(8).hex().encode(), True)
    if context is None:
        return
    trace, span, sampled = context
    flag = b"1" if sampled else b"0"
    if b"traceparent" not in found:
        headers.append((b"traceparent", b"00-%s-%s-%s" % (trace.rjust(32, b"0"), span, b"01" if sampled else b"00")))
    if b"b3" not in found:
        headers.append((b"b3", b"%s-%s-%s" % (trace, span, flag)))
    if b"x-b3-traceid" not in found:
        headers += [(b"x-b3-traceid", trace), (b"x-b3-spanid", span), (b"x-b3-sampled", flag)]


def _read(found: dict[bytes, bytes]) -> tuple[bytes, bytes, bool] | None:
    """(trace id, span id, sampled) from the first readable form: traceparent, b3, x-b3-*."""
    parent = found.get(b"traceparent")
    if parent is not None:
        parts = parent.split(b"-")
        if len(parts) >= 4 and len(parts[0]) == 2 and _hex(parts[1], 32) and _hex(parts[2], 16) and len(parts[3]) == 2:
            return parts[1], parts[2], parts[3] in (b"01", b"03")
    single = found.get(b"b3")
    if single is not None:
        parts = single.split(b"-")
        if len(parts) >= 2 and _hex(parts[0], 16, 32) and _hex(parts[1], 16):
            return parts[0], parts[1], len(parts) < 3 or parts[2] in (b"1", b"d")
    trace, span = found.get(b"x-b3-traceid"), found.get(b"x-b3-spanid")
    if trace is not None and span is not None and _hex(trace, 16, 32) and _hex(span, 16):
        return trace, span, found.get(b"x-b3-sampled", b"1") in (b"1", b"true", b"d")
    return None
