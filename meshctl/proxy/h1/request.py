"""Sans-IO HTTP/1.1 requests over httptools: the reader of a client connection and the request head.

A request head is usually forwarded in the bytes it came in. At a message boundary the reader cuts each
complete head out of what it reads (up to its first CRLFCRLF) before llhttp sees it. When the head is
plain — `METHOD /target HTTP/1.1` with a common method and an origin-form target, exactly one Host with a
value, no Transfer-Encoding, Upgrade or mesh-timeout field, within the size and field-count limits — the
reader takes the method and target from the request line, the fields from the lines after it (each cut at
its first colon: Host, Content-Length, the hop-by-hop ones), and feeds llhttp (a parser with no callback
but the body's) exactly that head, then exactly the Content-Length bytes of its body, and cuts the next
head after them. The upstream gets those same bytes, less the hop-by-hop lines; a retry sends them again.
A connection remembers its last plain head: the same bytes again are that head again, and the same
fields after another request line are not read again (RequestReader._last_head says when llhttp is fed).

Why these are the bytes llhttp parsed: llhttp is fed that slice and nothing else, and nothing read from
it reaches the sink unless llhttp accepted it. llhttp accepts only CRLF as a line end and no CR or LF
inside a request line, name or value, so the first CRLFCRLF of a head that starts with a request line
ends it, every CRLF inside it ends a field line, and a name is the token before the line's first colon
(no whitespace before it): the fields read here are the fields llhttp read. The body is the
Content-Length bytes llhttp reads too, so the next head starts where llhttp's next message does.
tests/unit/proxy/test_h1_plain_request.py holds llhttp to the line ends this relies on, and holds both
readings (requests, failures, the head sent upstream) equal; tests/reliability/test_fuzz_h1.py fuzzes it.

Anything else — a head not complete in the bytes at hand, chunked framing, HTTP/1.0, absolute-form, a
repeated or missing Host, a deadline to rewrite, an ingress listener (it adds trace fields) — goes to the
parser with every callback, exactly as it always read them. That parser keeps the connection until a read
ends at a message boundary after a message that keeps the connection: both parsers are at a boundary
then, where either is in a fresh parser's state. After a plain message that closes the connection, what
follows goes to its own parser, which refuses any further message as the other would.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Protocol

import httptools

from meshctl.proxy.errors import BadRequest, HeadTooLarge
from meshctl.proxy.h1.codec import (
    _CL,
    _CONNECTION,
    _HOST,
    _KEEP_ALIVE,
    _SPECIAL,
    _SPECIAL_FIRST,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Headers,
    _Head,
    _header_lines,
    _listed,
    _Reader,
)

# The request line of a plain head: a method llhttp knows, one space, an origin-form target (llhttp ends
# a target at its first space), one space, HTTP/1.1. CONNECT and rarer methods take the per-field path.
_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE) (/[^ \r\n]*) HTTP/1\.1\r\n")
_METHODS = {m: m.decode("ascii") for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE")}
# The hop-by-hop lines, in the lower-cased head: from the CRLF before the line to the one ending it.
_HOP_LINES = re.compile(rb"\r\n(?:connection|keep-alive|proxy-connection|te|trailer):[^\r]*")
_NOT_PLAIN = frozenset((b"transfer-encoding", b"upgrade", b"mesh-timeout"))  # read per field
_FEW_FIELDS = 400  # a head this short holds at most MAX_HEADERS fields ("a:\r\n" is 4 bytes): not counted
# The per-field path counts a field as name + value + 4 bytes; a line can be a byte shorter ("a:b\r\n"),
# so a plain head stays MAX_HEADERS below the limit and the per-field path judges those near it.
_PLAIN_MAX = MAX_HEAD_BYTES - MAX_HEADERS
_LF = b"\n"
_REMEMBERED = 1024  # the longest head a connection remembers
# What a head's fields say: the fields, authority, Content-Length, keeps the connection, cuts
_Fields = tuple[Headers, str, int | None, bool, list[tuple[int, int]] | None]


class RequestHead(_Head):
    __slots__ = ("headers", "method", "target", "authority", "path", "raw", "cuts")

    # A plain head is made with what its reader already knows (no default stored and then replaced).
    def __init__(self, headers: Headers, raw: bytes | None = None, cuts: list[tuple[int, int]] | None = None,
                 method: str = "", target: bytes = b"", path: str = "", authority: str = "",
                 keep_alive: bool = True) -> None:  # fmt: skip
        self.version = "1.1"
        self.headers = headers
        self.keep_alive = keep_alive
        self.chunked = False
        self.content_length = None
        self.drop = None
        self.hop = None
        self.timeout = None
        self.method = method
        self.target = target  # origin-form target sent upstream (path + query), "*" for OPTIONS *
        self.path = path  # path without the query, for route matching
        self.authority = authority
        self.raw = raw  # the head as read, when it is forwarded in its bytes (None once `headers` change)
        self.cuts = cuts  # ranges of `raw` left out: "\r\n" + a hop-by-hop line

    def serialize(self) -> bytes:
        """The head as sent upstream: origin-form, HTTP/1.1, hop-by-hop headers dropped."""
        raw = self.raw
        if raw is not None:
            cuts = self.cuts
            if cuts is None:
                return raw  # nothing to change: the bytes as read
            if len(cuts) == 1:  # the usual change: one line out (Connection: keep-alive)
                start, end = cuts[0]
                return raw[:start] + raw[end:]
            pieces, at = [], 0
            for start, end in cuts:
                pieces.append(raw[at:start])
                at = end
            pieces.append(raw[at:])  # a cut line leaves the CRLF before it to the next one
            return b"".join(pieces)
        framing = b"transfer-encoding: chunked\r\n\r\n" if self.chunked else b"\r\n"
        return b"".join((self.method.encode("ascii"), b" ", self.target, b" HTTP/1.1\r\n",
                         _header_lines(self.headers, self.drop), framing))  # fmt: skip


class RequestSink(Protocol):
    def on_request_head(self, head: RequestHead) -> None: ...

    def on_request(self, head: RequestHead) -> None:
        """A request without a body read whole (the commonest): on_request_head, then on_request_end(None)."""

    def on_request_body(self, data: bytes) -> None: ...

    def on_request_end(self, trailers: Headers | None) -> None: ...


class RequestReader(_Reader):
    """Downstream requests → sink calls. feed() raises BadRequest/HeadTooLarge; the connection is then done."""

    _head: RequestHead

    def __init__(self, sink: RequestSink, plain: bool = True) -> None:
        super().__init__()
        self._sink = sink
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._hosts = 0
        # Plain heads go to a parser whose only callback is the body's (a C call into the sink).
        self._plain = httptools.HttpRequestParser(SimpleNamespace(on_body=sink.on_request_body))
        self._may_cut = plain  # heads may be forwarded as read (not on an ingress: it adds fields)
        self._heads = plain  # the next bytes begin a head the reader cuts out itself
        self._remaining = 0  # body bytes of the plain request in progress still to come
        self._alive = True  # that request keeps the connection
        self._boundary = False  # the per-field parser has just ended a message that keeps the connection
        self._last_target = self._last_host = b""  # the last plain head's target and Host, and what they decode to
        self._path = self._authority = ""
        # The last plain head (when short): the same bytes again are the same object (this path never
        # changes a head once read: a mesh-timeout, which an exchange rewrites, is read per field); without
        # a body, and keeping the connection, not even fed to llhttp again: it took them at a message
        # boundary, with no callback, and ended at one. Its fields (after its request line, which ends at
        # _last_start) after another request line (one resource after another) are not read again either.
        self._last_raw = self._last_fields = b""
        self._last_head, self._last_start = RequestHead([]), 0

    def feed(self, data: bytes) -> None:
        """Reads the plain requests at the front of `data` here (heads cut out, bodies by their
        Content-Length: one frame per read); from the first head that is not plain, the parser with every
        callback (_parse)."""
        if not self._heads:
            self._parse(data)
            return
        if self._error is not None:
            raise self._error
        try:
            at, size = 0, len(data)
            remaining = self._remaining
            if remaining:  # the body of the request in progress comes first
                if size < remaining:
                    self._remaining = remaining - size
                    self._plain.feed_data(data)
                    return
                self._remaining = 0
                self._plain.feed_data(data if size == remaining else memoryview(data)[:remaining])
                at = remaining
                self._sink.on_request_end(None)
                if not self._alive:
                    self._parse(self._closed(data, at))
                    return
            while at < size:
                end = data.find(b"\r\n\r\n", at) + 4
                if end < 4:
                    self._parse(self._per_field(data, at))
                    return
                raw = data if end == size and not at else data[at:end]
                if raw != self._last_raw:
                    head = self._read(raw, end - at)
                    if head is None:
                        self._parse(self._per_field(data, at))
                        return
                else:  # the head this connection sent last (a client polling one URL)
                    head = self._last_head
                    if head.content_length is not None or not head.keep_alive:
                        self._plain.feed_data(raw)  # llhttp reads its body, or refuses what follows it
                parser = self._plain
                at = end
                alive, n = head.keep_alive, head.content_length
                if n is not None:
                    self._sink.on_request_head(head)
                    if n:
                        if size - at < n:  # the rest of the body comes in later reads
                            self._remaining, self._alive = n - (size - at), alive
                            if at < size:
                                parser.feed_data(memoryview(data)[at:])
                            return
                        parser.feed_data(memoryview(data)[at : at + n])
                        at += n
                    self._sink.on_request_end(None)
                else:
                    self._sink.on_request(head)  # no body: its head and its end in one call
                if not alive:
                    self._parse(self._closed(data, at))
                    return
        except httptools.HttpParserUpgrade:
            self._fail(BadRequest("protocol upgrades and CONNECT are not supported"))
        except httptools.HttpParserError as exc:
            self._parse_error(exc, "request")

    def _read(self, raw: bytes, size: int) -> RequestHead | None:
        """A plain head read (llhttp is fed it), remembered for the next head; None: not plain."""
        line = _LINE.match(raw)
        if line is None or (size > _FEW_FIELDS and (size > _PLAIN_MAX or raw.count(b"\r\n") > MAX_HEADERS + 2)):
            return None
        start = line.end()
        fields_at = raw[start:]
        last = self._last_head
        if fields_at == self._last_fields:  # the last plain head's fields after another request line
            self._plain.feed_data(raw)
            fields, authority, n, alive = last.headers, last.authority, last.content_length, last.keep_alive
            cuts, shift = last.cuts, start - self._last_start
            if cuts is not None and shift:
                cuts = [(at + shift, end + shift) for at, end in cuts]
        else:
            read = self._read_fields(raw, start)
            if read is None:
                return None
            fields, authority, n, alive, cuts = read
        target = line[2]
        if target != self._last_target:  # a connection mostly repeats its target: decoded once
            q = target.find(b"?")
            self._last_target, self._path = target, (target if q < 0 else target[:q]).decode("latin-1")
        head = RequestHead(fields, raw, cuts, _METHODS[line[1]], target, self._path, authority, alive)
        head.content_length = n
        if size <= _REMEMBERED:
            self._last_raw, self._last_head, self._last_fields, self._last_start = raw, head, fields_at, start
        else:
            self._last_raw = self._last_fields = b""
        return head

    def _read_fields(self, raw: bytes, start: int) -> _Fields | None:
        """The fields of a head whose request line is plain (llhttp is fed it); None: not plain."""
        fields = []  # as llhttp's callbacks give them: the name as read, the value without leading OWS
        host = length = tokens = None
        hop = False
        for field in raw[start:-4].split(b"\r\n"):
            name, _, value = field.partition(b":")
            value = value.lstrip(b" \t")
            fields.append((name, value))
            if name and name[0] in _SPECIAL_FIRST:  # only names that may be special are lower-cased
                lower = name.lower()
                if lower not in _SPECIAL:
                    continue
                if lower == _HOST:
                    if host is not None:  # repeated: refused by the per-field path
                        return None
                    host = value
                elif lower == _CL:  # llhttp refuses a second one
                    length = value
                elif lower in _NOT_PLAIN:
                    return None
                else:
                    hop = True
                    if lower == _CONNECTION:
                        tokens = value if tokens is None else tokens + b"," + value
        if not host:  # missing or empty: refused by the per-field path
            return None
        parser = self._plain
        cuts = None
        if not hop:  # no Connection or Proxy-Connection field: HTTP/1.1 keeps the connection
            parser.feed_data(raw)
            alive = True
        else:
            lower = raw.lower()
            cuts = [match.span() for match in _HOP_LINES.finditer(lower)]
            if tokens is not None and tokens.strip().lower() != _KEEP_ALIVE:
                cuts = _listed(tokens.lower(), lower, cuts)
            # llhttp's own reading, asked before the message ends (it forgets it then)
            parser.feed_data(memoryview(raw)[:-1])
            alive = parser.should_keep_alive()
            parser.feed_data(_LF)
        if host != self._last_host:  # a connection mostly repeats its Host: decoded once
            self._last_host, self._authority = host, host.decode("latin-1")
        n = None
        if length is not None:  # checked as the per-field path checks it, once llhttp has accepted it
            if not length.isdigit() or len(length) > 15:
                self._fail(BadRequest("invalid Content-Length"))
            n = int(length)
        return fields, self._authority, n, alive, cuts

    def _parse(self, data: bytes) -> None:
        """The parser with every callback (or, after a plain request that closed the connection, the
        plain one, which refuses what follows)."""
        if self._error is not None:
            raise self._error
        if not data:
            return
        try:
            self._fed = size = len(data)
            if self._in_head:
                self._wire += size
                if self._wire > MAX_HEAD_BYTES + 8192:
                    self._fail(HeadTooLarge("header section too large"))
            self._parser.feed_data(data)
            if self._boundary:  # the read ended between messages: the next head may be cut out again
                self._boundary = False
                self._heads = True
        except httptools.HttpParserUpgrade:
            self._fail(BadRequest("protocol upgrades and CONNECT are not supported"))
        except httptools.HttpParserError as exc:
            self._parse_error(exc, "request")

    def _closed(self, data: bytes, at: int) -> bytes:
        """A plain request closed the connection: llhttp refuses any message after it, as the per-field
        parser would. What follows goes to the parser that read it."""
        self._heads = self._may_cut = False
        self._parser = self._plain
        return data[at:]

    def _per_field(self, data: bytes, at: int) -> bytes:
        """From `at` on, the parser with every callback (at a message boundary, as a fresh one)."""
        self._heads = False
        return data[at:] if at else data

    def on_message_begin(self) -> None:
        self._boundary = False
        self._in_head = True
        self._wire = self._count = self._hosts = 0
        self._first = self._fed
        self._trailers = self._cl = self._te = self._tokens = None
        fields: Headers = []
        self._fields = fields
        self._head = RequestHead(fields)
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_HEAD_BYTES:
            self._fail(HeadTooLarge("request target too large"))

    def _host(self, value: bytes) -> None:
        self._hosts += 1
        if self._hosts > 1:
            self._fail(BadRequest("repeated Host"))
        self._head.authority = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        head = self._head
        if self._first + self._wire > MAX_HEAD_BYTES:  # the reads it came in could hold a head too large
            self._check_size(head.headers)
        parser = self._parser
        head.keep_alive = keep_alive = parser.should_keep_alive()
        version = "1.1" if keep_alive and head.hop is None else parser.get_http_version()  # see _version
        if version != "1.1" and version != "1.0":
            self._fail(BadRequest(f"unsupported HTTP version {version}"))
        if self._te is None and self._cl is None and self._tokens is None:
            head.version = version  # no framing or connection fields: nothing for _framing to check
        else:
            self._framing(version)
        head.method = parser.get_method().decode("ascii")
        url = self._url
        if url[:1] == b"/":
            head.target = url
            q = url.find(b"?")
            head.path = (url if q < 0 else url[:q]).decode("latin-1")
        elif url == b"*" and head.method == "OPTIONS":
            head.target, head.path = url, "*"
        else:
            self._absolute(url)
        if not head.authority and version == "1.1":
            self._fail(BadRequest("missing Host"))
        self._in_head = False
        self._sink.on_request_head(head)

    def _absolute(self, url: bytes) -> None:
        """Absolute-form (the app uses the proxy as an HTTP proxy): the URI's authority wins over Host."""
        try:
            parts = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            self._fail(BadRequest("invalid request target"))
        if parts.schema not in (b"http", b"https") or not parts.host:
            self._fail(BadRequest("invalid request target"))
        head = self._head
        authority = parts.host + (b":%d" % parts.port if parts.port else b"")
        head.authority = authority.decode("latin-1")
        path = parts.path or b"/"
        head.path = path.decode("latin-1")
        head.target = path + (b"?" + parts.query if parts.query else b"")
        head.headers = [h for h in head.headers if h[0].lower() != _HOST]
        head.headers.insert(0, (b"Host", authority))

    def on_body(self, data: bytes) -> None:
        self._sink.on_request_body(data)

    def on_message_complete(self) -> None:
        self._boundary = self._may_cut and self._head.keep_alive
        self._sink.on_request_end(self._trailers)
