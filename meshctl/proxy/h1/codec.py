"""Sans-IO HTTP/1.1 over httptools: what both readers share, head serialisation (requests: request.py,
responses: response.py).

Strict on purpose — a proxy that reads a message differently from the server behind it enables
request smuggling. llhttp already rejects bare LF, obs-fold, whitespace before colons, bad chunk
sizes, NUL/CR/LF and other control bytes in values, duplicate or signed Content-Length and CL together
with TE; on top of that we refuse any Transfer-Encoding other than exactly "chunked", TE on HTTP/1.0,
versions other than 1.0/1.1, missing or repeated Host, heads over 64 KiB (431) and more than 100 header
fields. Hop-by-hop headers are dropped when a head is re-serialised; chunked framing is re-added.
"""

from __future__ import annotations

from itertools import chain

import httptools

from meshctl.proxy.errors import BadRequest, HeadTooLarge

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade", b"transfer-encoding")
)
_HOST, _CL, _TE, _CONNECTION = b"host", b"content-length", b"transfer-encoding", b"connection"
_TIMEOUT = b"mesh-timeout"  # the client's own deadline (policy/deadline.py)
# Names the readers look at; anything else is copied without a second look.
_SPECIAL = HOP_BY_HOP | {_HOST, _CL, _TIMEOUT}
# The first bytes (either case) those names begin with: any other field skips the lower-casing.
_SPECIAL_FIRST = frozenset(c for n in _SPECIAL for c in (n[0], n.upper()[0]))
_FIELD = b": "
_KEEP_ALIVE = b"keep-alive"
Headers = list[tuple[bytes, bytes]]


def chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer coding."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: Headers | None) -> bytes:
    if not trailers:
        return b"0\r\n\r\n"
    return b"0\r\n" + b"".join(b"%b: %b\r\n" % (n, v) for n, v in trailers) + b"\r\n"


def _header_lines(headers: Headers, drop: frozenset[bytes] | None, hop: list[int] | None = None) -> bytes:
    # map(b": ".join, ...) joins each (name, value) in C: no Python frame or format per field.
    if drop is HOP_BY_HOP and hop is not None:  # the positions of the only fields to drop are known
        headers = headers.copy()
        for i in reversed(hop):
            del headers[i]
    elif drop is not None:
        headers = [h for h in headers if h[0].lower() not in drop]
    return b"\r\n".join(map(_FIELD.join, headers)) + b"\r\n" if headers else b""


def _listed(tokens: bytes, lower: bytes, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`cuts` and the lines of the fields a Connection field names besides the hop-by-hop ones (Host and
    Content-Length are never dropped), as (the CRLF before the line, its own CRLF)."""
    for token in {t.strip() for t in tokens.split(b",")} - HOP_BY_HOP - {_HOST, _CL, b""}:
        if b":" in token:
            continue  # no field name holds a colon
        needle = b"\r\n" + token + b":"
        at = lower.find(needle)
        while at >= 0:
            end = lower.find(b"\r\n", at + 2)
            cuts.append((at, end))
            at = lower.find(needle, end)
    cuts.sort()
    return cuts


# _version: get_http_version() formats a new string per message (~2,300 machine instructions). llhttp
# takes only the versions 0.9, 1.0, 1.1 and 2.0, and of those keeps only 1.1 alive when no Connection or
# Proxy-Connection field says otherwise (both are hop-by-hop: `hop` is None without them), so a message
# kept alive with no hop-by-hop field is HTTP/1.1. tests/unit/proxy/test_h1.py holds llhttp to that.


def _reraise_callback_bug(exc: Exception) -> None:
    """An exception from a sink (not a parse error) is a bug: let it surface as itself."""
    cause = exc.__context__
    if isinstance(cause, Exception) and not isinstance(cause, httptools.HttpParserError):
        raise cause


class _Head:
    __slots__ = ("version", "keep_alive", "chunked", "content_length", "drop", "hop", "timeout")

    # One head per message: the subclasses set these themselves (no super() call per message). Slots and
    # an __init__ cost fewer machine instructions than class-level defaults with an instance dict
    # (measured with callgrind: ~4,400 against ~4,800 per response head), though they run more bytecodes.
    version: str
    keep_alive: bool
    chunked: bool
    content_length: int | None
    drop: frozenset[bytes] | None  # names to leave out when serialising; None: none present
    hop: list[int] | None  # where the hop-by-hop fields are in `headers`, as parsed
    timeout: bytes | None  # the mesh-timeout value, when the message carries one


class _Reader:
    """What both directions share: header collection, size limits and framing checks."""

    _head: _Head

    def __init__(self) -> None:
        self._error: Exception | None = None
        self._in_head = False
        self._wire = 0  # bytes read while a head is incomplete (fields arrive whole, this sees them grow)
        self._fed = 0  # bytes in the read being parsed
        self._first = 0  # bytes in the read the message began in
        self._count = 0
        self._trailers: Headers | None = None
        self._cl: bytes | None = None
        self._te: bytes | None = None
        self._tokens: bytes | None = None  # Connection header value(s)
        self._fields: Headers = []  # the head's fields, as on_header adds them

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        raise exc  # httptools aborts the parse and re-raises as a callback error

    def _parse_error(self, exc: httptools.HttpParserError, what: str) -> None:
        """llhttp refused the bytes: the failure a callback raised first, a sink's bug as itself, else the
        side's own failure for a malformed message (`_malformed`)."""
        if self._error is not None:
            raise self._error from None
        _reraise_callback_bug(exc)
        self._fail(self._malformed(f"malformed {what}: {exc}"))

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once per field: only the count is checked here (it bounds the list within one read;
        # feed() bounds a head that spans reads). The size is summed once the head is complete, and only
        # when the reads it came in could hold too large a head; only names whose first byte may begin
        # a special one are lower-cased.
        if not self._in_head:  # trailer fields of a chunked body
            self._trailer(name, value)
            return
        self._count += 1
        if self._count > MAX_HEADERS:
            self._fail(BadRequest("too many header fields"))
        if name[0] in _SPECIAL_FIRST:
            lower = name.lower()
            if lower in _SPECIAL:
                self._special(lower, value)
        self._fields.append((name, value))

    def _trailer(self, name: bytes, value: bytes) -> None:
        if self._trailers is None:
            self._trailers = []
        if len(self._trailers) < MAX_HEADERS and name.lower() not in _SPECIAL:
            self._trailers.append((name, value))

    def _check_size(self, fields: Headers) -> None:
        """The fields as the callbacks saw them (with ": " and CRLF) within MAX_HEAD_BYTES."""
        if sum(map(len, chain.from_iterable(fields))) + 4 * len(fields) > MAX_HEAD_BYTES:
            self._fail(HeadTooLarge("header section too large"))

    def _special(self, lower: bytes, value: bytes) -> None:
        if lower == _CL:
            if self._cl is not None and self._cl != value:
                self._fail(BadRequest("conflicting Content-Length"))
            self._cl = value
        elif lower == _TE:
            if self._te is not None:
                self._fail(BadRequest("repeated Transfer-Encoding"))
            self._te = value
        elif lower == _CONNECTION:
            self._tokens = value if self._tokens is None else self._tokens + b"," + value
        elif lower == _HOST:
            self._host(value)
        elif lower == _TIMEOUT:
            self._head.timeout = value
        if lower in HOP_BY_HOP:
            head = self._head
            if head.hop is None:
                head.hop = [len(self._fields)]  # on_header appends the field after this
                if head.drop is None:
                    head.drop = HOP_BY_HOP
            else:
                head.hop.append(len(self._fields))

    def _host(self, value: bytes) -> None:
        pass

    def _framing(self, version: str) -> None:
        """Checks once the head is complete; raises BadRequest (or UpstreamReset on the response side)."""
        head = self._head
        head.version = version
        if self._te is not None:
            if self._te.strip().lower() != b"chunked":
                self._fail(self._malformed("Transfer-Encoding other than chunked"))
            if version != "1.1":
                self._fail(self._malformed("Transfer-Encoding on HTTP/1.0"))
            head.chunked = True
        elif self._cl is not None:
            if not self._cl.isdigit() or len(self._cl) > 15:
                self._fail(self._malformed("invalid Content-Length"))
            head.content_length = int(self._cl)
        tokens = self._tokens
        if tokens is not None:
            if tokens.strip().lower() == _KEEP_ALIVE:  # the usual one: it names nothing beyond HOP_BY_HOP
                head.drop = HOP_BY_HOP
                return
            listed = frozenset(t.strip().lower() for t in tokens.split(b",") if t.strip())
            head.drop = HOP_BY_HOP | (listed - {_HOST, _CL})

    def _malformed(self, reason: str) -> Exception:
        return BadRequest(reason)
