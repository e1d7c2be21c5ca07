"""gRPC-over-HTTP/2 details the proxy needs: deadlines, statuses and the responses it synthesises.

A failure the proxy makes up for a gRPC request is a trailers-only response (HTTP 200 with grpc-status in
the one header block), as gRPC servers send it; when response headers already went out, the status goes in
trailers instead. Either way the block names the proxy's reason in `mesh-proxy-error`.
"""

from __future__ import annotations

from enum import IntEnum

from meshctl.proxy.h2.headers import Block, Header, safe_value

PROXY_ERROR = b"mesh-proxy-error"
MAX_TIMEOUT_S = 24 * 3600.0  # cap on a forwarded deadline, as Envoy's max_grpc_timeout

_UNITS = {ord("H"): 3600.0, ord("M"): 60.0, ord("S"): 1.0, ord("m"): 1e-3, ord("u"): 1e-6, ord("n"): 1e-9}


class GrpcStatus(IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    DEADLINE_EXCEEDED = 4
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


def is_grpc(content_type: bytes) -> bool:
    return content_type[:16] == b"application/grpc"


def parse_timeout(value: bytes) -> float | None:
    """Seconds from a grpc-timeout value (1-8 digits and a unit), or None when it is not one."""
    digits = value[:-1]
    unit = _UNITS.get(value[-1]) if value else None
    if unit is None or not 1 <= len(digits) <= 8 or not digits.isdigit():
        return None
    return min(int(digits) * unit, MAX_TIMEOUT_S)


def format_timeout(seconds: float) -> bytes:
    """The remaining time as grpc-timeout: milliseconds while they fit in 8 digits (rounded up)."""
    millis = max(1, int(seconds * 1000.0 + 0.999))
    if millis < 100_000_000:
        return b"%dm" % millis
    return b"%dS" % min(99_999_999, int(seconds + 0.999))


def encode_message(text: str) -> bytes:
    """grpc-message percent-encoding: printable ASCII except '%' passes, the rest is %XX of UTF-8."""
    out = bytearray()
    for byte in text.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def trailers_only(status: int, message: str, reason: str) -> list[Header]:
    """A complete synthesised gRPC response: one header block with END_STREAM."""
    return [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"%d" % status),
        (b"grpc-message", encode_message(message)),
        (PROXY_ERROR, safe_value(reason)),
    ]


def error_trailers(status: int, message: str, reason: str) -> list[Header]:
    """Trailers ending a gRPC response whose headers were already forwarded."""
    return [
        (b"grpc-status", b"%d" % status),
        (b"grpc-message", encode_message(message)),
        (PROXY_ERROR, safe_value(reason)),
    ]


def plain_response(http_status: int, reason: str, text: str = "") -> tuple[list[Header], bytes]:
    """A synthesised non-gRPC response: status, short text body (`text`, else the reason) and the proxy-error field."""
    body = safe_value(text or reason) + b"\n"
    headers = [
        (b":status", b"%d" % http_status),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (PROXY_ERROR, safe_value(reason)),
    ]
    return headers, body


def status_of(headers: Block) -> int | None:
    """grpc-status from a trailer (or trailers-only) block, None when absent or unreadable."""
    for name, value in headers:
        if name == b"grpc-status":
            return int(value) if value.isdigit() and len(value) <= 3 else int(GrpcStatus.UNKNOWN)
    return None


def status_for_http(http_status: int) -> int:
    """gRPC's mapping of an HTTP status on a response without grpc-status (doc/http-grpc-status-mapping)."""
    return {
        400: GrpcStatus.INTERNAL,
        401: GrpcStatus.UNAUTHENTICATED,
        403: GrpcStatus.PERMISSION_DENIED,
        404: GrpcStatus.UNIMPLEMENTED,
        429: GrpcStatus.UNAVAILABLE,
        502: GrpcStatus.UNAVAILABLE,
        503: GrpcStatus.UNAVAILABLE,
        504: GrpcStatus.UNAVAILABLE,
    }.get(http_status, GrpcStatus.UNKNOWN)
