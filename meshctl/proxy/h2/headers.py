"""HTTP/2 field validation (RFC 9113 §8.2, §8.3) in one pass per header block.

nghttp2 checks field names and values itself (and resets a stream it finds malformed); the rules a
proxy owes beyond those (pseudo-headers, CONNECT, hop-by-hop fields, lengths) are checked here. A
malformed block is a `Malformed` exception, which the connection core turns into a stream reset. The checks that run on
every request are compiled regexes, so the common case stays in C.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Header = tuple[bytes, bytes]
Block = Sequence[Header]  # a header block only read: a response's is ngh2's tuple, handed on uncopied

# Field names: visible ASCII except uppercase and ':' (RFC 9113 §8.2.1).
_BAD_NAME = re.compile(rb"[^\x21-\x39\x3b-\x40\x5b-\x7e]")
# Field values: no NUL, CR, LF anywhere; no leading or trailing SP/HTAB (RFC 9113 §8.2.1).
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
# Hop-by-hop fields that HTTP/2 forbids outright (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority"})
# The regular fields check_request reads (most requests carry none of them).
_ROUTED = frozenset({b"host", b"content-type", b"grpc-timeout", b"mesh-timeout", b"content-length"})
# :method is a token (RFC 9110 §9.1); :path and :authority are visible ASCII only (RFC 3986), so a
# request cannot smuggle a second request line when it is translated to HTTP/1.1.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VISIBLE = re.compile(rb"[\x21-\x7e]*")
MAX_FIELDS = 100  # regular fields per block, as Envoy's max_headers_count
# Regular fields that passed _check_regular lately: most blocks repeat the fields of the ones before
# (accept, user-agent, content-type, server...), so a set lookup replaces two regex scans per field.
# Bounded: cleared when full, short fields only.
_VALID: set[Header] = set()
_FINAL_STATUS = {b"%d" % code: code for code in range(200, 1000)}  # a final :status value, read in one lookup
_VALID_MAX = 512
# (method, scheme, :authority, host) of requests that passed lately: a few origins carry most requests.
_VALID_ORIGINS: set[tuple[bytes, bytes, bytes, bytes]] = set()
_VALID_LEN = 128
# :path values that passed _VISIBLE lately (short ones): gRPC methods and most routes repeat.
_VALID_PATHS: set[bytes] = set()


class Malformed(Exception):
    """A header block that RFC 9113 calls malformed: the stream is reset with PROTOCOL_ERROR."""


class Refused(Exception):
    """A well-formed request the mesh does not carry (CONNECT): answered on its stream with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class RequestHead:
    """A request's routing fields. check_request sets every field itself (without __init__): a field
    added here is set there too (test_h2_core compares its heads with ones built by __init__)."""

    method: bytes
    scheme: bytes
    path: bytes
    authority: bytes
    content_type: bytes
    grpc_timeout: bytes | None
    headers: list[Header]
    content_length: int | None = None  # the body must be exactly this long (RFC 9113 §8.1.1)
    mesh_timeout: bytes | None = None  # the client's own deadline on any request (policy/deadline.py)


_new_head = object.__new__


def _check_field(field: Header) -> None:
    """_check_regular, remembered for the fields seen lately."""
    if field in _VALID:
        return
    name, value = field
    _check_regular(name, value)
    if len(name) + len(value) <= _VALID_LEN:
        if len(_VALID) >= _VALID_MAX:
            _VALID.clear()
        _VALID.add(field)


def _check_regular(name: bytes, value: bytes) -> None:
    if not name or _BAD_NAME.search(name) is not None:
        raise Malformed(f"invalid field name {name[:40]!r}")
    if value and _BAD_VALUE.search(value) is not None:
        raise Malformed(f"invalid value in field {name[:40]!r}")
    if name in CONNECTION_SPECIFIC:
        raise Malformed(f"connection-specific field {name.decode('ascii')!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise Malformed("te other than trailers")


def _content_length(value: bytes, seen: int | None) -> int:
    """1*DIGIT, once: "+5", "5_0", " 5" or a second content-length make the message malformed."""
    if seen is not None:
        raise Malformed("repeated content-length")
    if not value.isdigit() or len(value) > 15:
        raise Malformed("invalid content-length")
    return int(value)


def check_request(headers: list[Header]) -> RequestHead:
    """Validate a request header block and pull out the fields the proxy routes on."""
    # The common block, at C speed: the four pseudo-headers first, then regular fields that all passed
    # the checks lately and name no field twice. Anything else takes the field-by-field loop.
    fast = False
    if len(headers) >= 4:
        pseudo = dict(headers[:4])
        if pseudo.keys() == _REQUEST_PSEUDO:
            rest = headers[4:]
            if len(rest) <= MAX_FIELDS and _VALID.issuperset(rest):
                fields = dict(rest)
                if len(fields) == len(rest):
                    fast = True
                    method, scheme = pseudo[b":method"], pseudo[b":scheme"]
                    authority, path = pseudo[b":authority"], pseudo[b":path"]
                    if _ROUTED.isdisjoint(fields):  # none of the fields read below: one C call, not five
                        host = content_type = b""
                        grpc_timeout = mesh_timeout = None
                        length = None
                    else:
                        get = fields.get
                        host, content_type = get(b"host", b""), get(b"content-type", b"")
                        grpc_timeout, mesh_timeout = get(b"grpc-timeout"), get(b"mesh-timeout")
                        value = get(b"content-length")
                        if value is None:
                            length = None
                        elif value.isdigit() and len(value) <= 15:  # _content_length's rule, inline
                            length = int(value)
                        else:
                            length = _content_length(value, None)  # raises
    if not fast:
        pseudo, host, content_type, grpc_timeout, length, mesh_timeout = _check_request_fields(headers)
        method, scheme = pseudo.get(b":method", b""), pseudo.get(b":scheme", b"")
        authority, path = pseudo.get(b":authority", b""), pseudo.get(b":path", b"")
    # The checks on the pseudo-header values, and the head the proxy routes on.
    seen = (method, scheme, authority, host)
    if seen not in _VALID_ORIGINS or not path:
        _check_origin(pseudo, method, scheme, authority, host, path)
        if len(_VALID_ORIGINS) >= _VALID_MAX:
            _VALID_ORIGINS.clear()
        _VALID_ORIGINS.add(seen)
    authority = authority or host
    if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
        raise Malformed("invalid :path")
    if path not in _VALID_PATHS:  # a set lookup costs a tenth of the pattern's call
        if _VISIBLE.fullmatch(path) is None:
            raise Malformed("invalid :path")
        if len(path) <= _VALID_LEN:
            if len(_VALID_PATHS) >= _VALID_MAX:
                _VALID_PATHS.clear()
            _VALID_PATHS.add(path)
    # The head's fields set here, on an instance made without its __init__: calling a class with a Python
    # __init__ goes through type_call and slot_tp_init (~950 instructions more, once a request).
    head = _new_head(RequestHead)
    head.method = method
    head.scheme = scheme
    head.path = path
    head.authority = authority
    head.content_type = content_type
    head.grpc_timeout = grpc_timeout
    head.headers = headers
    head.content_length = length
    head.mesh_timeout = mesh_timeout
    return head


def _check_request_fields(
    headers: list[Header],
) -> tuple[dict[bytes, bytes], bytes, bytes, bytes | None, int | None, bytes | None]:
    """The field-by-field reading: (pseudo-headers, host, content-type, grpc-timeout, length, mesh-timeout)."""
    pseudo: dict[bytes, bytes] = {}
    regular = 0
    host = content_type = b""
    grpc_timeout: bytes | None = None
    mesh_timeout: bytes | None = None
    length: int | None = None
    for field in headers:
        name, value = field
        if name[:1] == b":":
            if regular:
                raise Malformed("pseudo-header after regular field")
            if name not in _REQUEST_PSEUDO:
                raise Malformed(f"unexpected pseudo-header {name[:40]!r}")
            if name in pseudo:
                raise Malformed(f"repeated {name.decode('ascii')}")
            pseudo[name] = value
            continue
        regular += 1
        if field not in _VALID:
            _check_field(field)
        if name == b"content-type":
            content_type = value
        elif name == b"grpc-timeout":
            grpc_timeout = value
        elif name == b"host":
            host = value
        elif name == b"content-length":
            length = _content_length(value, length)
        elif name == b"mesh-timeout":
            mesh_timeout = value
    if regular > MAX_FIELDS:
        raise Malformed("too many header fields")
    return pseudo, host, content_type, grpc_timeout, length, mesh_timeout


def _check_origin(
    pseudo: dict[bytes, bytes], method: bytes, scheme: bytes, authority: bytes, host: bytes, path: bytes
) -> None:  # fmt: skip
    """Method, scheme, :authority and host of a request (the pair of them _VALID_ORIGINS has not seen)."""
    if _TOKEN.fullmatch(method) is None:
        raise Malformed("missing or invalid :method")
    if _VISIBLE.fullmatch(authority) is None or _VISIBLE.fullmatch(host) is None:
        raise Malformed("invalid :authority or host")
    if host and authority and host != authority:
        raise Malformed("host differs from :authority")
    if method == b"CONNECT":
        if not (authority or host) or b":scheme" in pseudo or b":path" in pseudo:
            raise Malformed("malformed CONNECT")
        # Forwarding it would hand the app "CONNECT / HTTP/1.1"; the HTTP/1.1 path refuses it too.
        raise Refused(405, "CONNECT is not supported")
    # :method, :authority and :path are held to a token or visible ASCII, which excludes every byte
    # _BAD_VALUE looks for; :scheme needs it.
    if not scheme or not path or _BAD_VALUE.search(scheme) is not None:
        raise Malformed("missing :scheme or :path")


def check_response(headers: Block) -> tuple[int, int | None]:
    """Validate a final response header block; returns the status code and content-length (or None)."""
    # The common block, at C speed (as check_request's): :status, then fields that all passed lately.
    if headers:
        name, value = headers[0]
        rest = headers[1:]
        status = _FINAL_STATUS.get(value) if name == b":status" else None
        if status is not None and len(rest) <= MAX_FIELDS and _VALID.issuperset(rest):
            fields = dict(rest)
            if len(fields) == len(rest):
                length = fields.get(b"content-length")
                if length is None:
                    return status, None
                if length.isdigit() and len(length) <= 15:  # _content_length's rule, inline
                    return status, int(length)
                return status, _content_length(length, None)  # raises
    return _check_response_fields(headers)


def _check_response_fields(headers: Block) -> tuple[int, int | None]:
    status = -1
    regular = 0
    length: int | None = None
    for field in headers:
        name, value = field
        if name[:1] == b":":
            if name != b":status" or status != -1 or regular:
                raise Malformed(f"unexpected pseudo-header {name[:40]!r}")
            if len(value) != 3 or not value.isdigit():
                raise Malformed("invalid :status")
            status = int(value)
            continue
        regular += 1
        if field not in _VALID:
            _check_field(field)
        if name == b"content-length":
            length = _content_length(value, length)
    if status < 200:
        raise Malformed("missing or informational :status")
    if regular > MAX_FIELDS:
        raise Malformed("too many header fields")
    return status, length


def check_trailers(headers: list[Header]) -> None:
    """Validate a trailer block: regular fields only."""
    if len(headers) > MAX_FIELDS:
        raise Malformed("too many trailer fields")
    for field in headers:
        if field[0][:1] == b":":
            raise Malformed("pseudo-header in trailers")
        if field not in _VALID:
            _check_field(field)


def safe_value(text: str) -> bytes:
    """A proxy-generated field value: printable ASCII only, never empty, never padded."""
    cleaned = "".join(c if " " <= c <= "~" else " " for c in text).strip()
    return (cleaned or "error")[:200].encode("ascii")
