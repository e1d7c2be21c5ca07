"""Sans-IO HTTP/1.1 responses over httptools: the reader of an upstream connection (its heads: response_head.py).

A response head is usually forwarded in the bytes it came in. The reader cuts each complete head out of
what it reads (up to its first CRLFCRLF) before llhttp sees it, and feeds llhttp exactly that head. When
the head is plain — it starts `HTTP/1.1 ` or `HTTP/1.0 ` with a status from 100 and a space, is
within the size and field-count limits, and carries no Transfer-Encoding — it goes to a parser that makes
no call per field, and the proxy reads the few fields it needs (Content-Length, Connection, the other
hop-by-hop ones) from the bytes. The client then gets those same bytes, less the hop-by-hop lines, with
its own version in the status line.

Why these are the bytes llhttp parsed: llhttp is fed that slice and nothing else, accepts only CRLF as
a line end and no CR or LF inside a start line, name or value, so the first CRLFCRLF of a message that
starts with `HTTP/` ends its head, and every field line of it follows a CRLF: `\\r\\nname:` in the
lower-cased head finds exactly the fields of that name. A head llhttp refuses fails as before.

A connection keeps the last short final plain head that kept it, with what was read from it: an upstream
mostly repeats its head (nginx's changes with its Date, once a second). The same bytes again are read as
they were, without a pass over them and without llhttp, which is then at a message boundary, where those
bytes left it and where it would read them alike; the body is framed by the Content-Length read then.

Anything else — a head that is not complete in the bytes at hand, Transfer-Encoding (trailers need
the per-field callbacks), other versions, leading blank lines — goes to a parser with every callback,
exactly as the per-field path always read it; that parser keeps the rest of the exchange. Both parsers
are at a message boundary when one takes over from the other, where a fresh parser is the same state.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Protocol

import httptools

from meshctl.proxy.errors import UpstreamClosed, UpstreamReset
from meshctl.proxy.h1.codec import _KEEP_ALIVE, MAX_HEAD_BYTES, MAX_HEADERS, Headers, _listed, _Reader
from meshctl.proxy.h1.response_head import ResponseHead, without

_PLAIN = (b"HTTP/1.1 ", b"HTTP/1.0 ")
_FEW_FIELDS = 400  # a head this short holds at most MAX_HEADERS fields ("a:\r\n" is 4 bytes): not counted
# The per-field path counts a field as name + value + 4 bytes; a line can be a byte shorter ("a:b\r\n"),
# so a plain head stays MAX_HEADERS below the limit and the per-field path judges those near it.
_PLAIN_MAX = MAX_HEAD_BYTES - MAX_HEADERS
_MAX_LINES = MAX_HEADERS + 2  # CRLFs in a head of MAX_HEADERS fields: after the start line and each, one more
# The fields a head is read for, in its lower-cased bytes: from the CRLF before the line to the one ending
# it, the name, the value without leading OWS (as llhttp gives it). Transfer-Encoding makes it not plain.
# Names that share a first letter are grouped: the matcher tries fewer alternatives at each line.
_FIELDS = re.compile(rb"\r\n(c(?:ontent-length|onnection)|keep-alive|proxy-connection|t(?:e|railer"
                     rb"|ransfer-encoding)|upgrade):[ \t]*([^\r]*)")  # fmt: skip
_TE = b"transfer-encoding"
_CONNECTION = b"connection"
_CONTENT_LENGTH = b"content-length"
_LF = b"\n"
_KEPT = 1024  # the longest head a connection keeps to compare the next with (one per pooled connection)


class ResponseSink(Protocol):
    def on_response_head(self, head: ResponseHead) -> None: ...

    def on_response_body(self, data: bytes) -> None: ...

    def on_response_end(self, trailers: Headers | None, last: bytes = b"") -> None:
        """The response is complete; `last`: its last body bytes, when they came with its end (one call
        for a response read whole, as if on_response_body(last) came first)."""


class ResponseReader(_Reader):
    """Upstream responses → sink calls. Call expect(head_request) before each request is sent; `sink` may
    be replaced between messages (the upstream connection points it at the exchange it serves)."""

    _head: ResponseHead

    def __init__(self, sink: ResponseSink) -> None:
        super().__init__()
        self.sink = sink
        # The last short final plain head that kept the connection, and what was read from it (heads share
        # its cuts): an upstream mostly repeats its head (nginx's changes with its Date, once a second).
        # The same bytes again are read as they were, without a pass over them and without llhttp
        # (`_quiet`): at a message boundary, where these bytes left it, llhttp reads them alike again.
        self._last_head = b""
        self._last_reading: tuple[int | None, list[tuple[int, int]] | None, int, bytes | None] = (None, None, 0, None)
        self._quiet = False  # llhttp does not read the plain response in progress (its head was the last one)
        self._unbegun: list[None] = []  # holds an item while _after() reads, until the plain parser begins a message
        self._plain = self._plain_parser()
        self._parser = self._plain
        self._heads = False  # the next bytes begin (or continue) a head the reader cuts out itself
        self._head_request = False
        self._done = True  # no response is expected: bytes now are a protocol error
        self._started = False  # bytes of the expected response have arrived
        self._until_eof = False  # the body in progress ends when the upstream closes
        self._left = 0  # body bytes of the plain response in progress still to come (-1: until the close)
        self._buffer = b""
        self.trailing = False  # bytes came after a response in its read: the connection is done with
        self._ended = False  # the per-field parser completed a response: delivered once the read is parsed

    def _plain_parser(self) -> httptools.HttpResponseParser:
        # No Python callback: feed() reads the head once llhttp has accepted it, and the body and the
        # message's end by the head's Content-Length. A message's beginning empties `_unbegun` (list.clear,
        # a C call without a frame): _after() tells a response nobody asked for from line ends by it.
        return httptools.HttpResponseParser(SimpleNamespace(on_message_begin=self._unbegun.clear))

    def expect(self, head_request: bool) -> None:
        self._head_request = head_request
        self._done = self._started = False
        self._heads = True
        self._parser = self._plain  # at a message boundary (the last response ended, or nothing was read)

    def feed(self, read: bytes) -> None:
        """Parses the plain heads at the front of `read` here (one frame per read), their body after the
        final one; once a head is not plain, everything from it on goes to the parser with every callback."""
        if not self._heads:
            left = self._left
            if left:
                self._plain_body(read, left)
                return
            if self._parser is self._plain:  # after a plain response: only line ends may follow
                if self._error is not None:
                    raise self._error
                self._after(read)
                return
            self._parse(read, self._head_request)
            return
        if self._error is not None:
            raise self._error
        buffer = read
        try:
            while True:
                end = buffer.find(b"\r\n\r\n") + 4
                if end < 4:
                    self._per_field(buffer)
                    return
                raw = buffer if end == len(buffer) else buffer[:end]
                if raw == self._last_head:  # as the last final head, which kept the connection: see _quiet
                    length, cuts, status, forward = self._last_reading
                    if forward is None:  # the second time: it is kept as it is forwarded, too
                        forward = without(raw, cuts)
                        self._last_reading = (length, cuts, status, forward)
                    self._head = head = ResponseHead(raw, cuts, forward)
                    self._quiet = True
                else:
                    if raw[:9] not in _PLAIN or not 49 <= raw[9] <= 57 or raw[12] != 32 or \
                            (end > _FEW_FIELDS and (end > _PLAIN_MAX or raw.count(b"\r\n") > _MAX_LINES)):  # fmt: skip
                        self._per_field(buffer)
                        return
                    lower = raw.lower()
                    value = tokens = cuts = None
                    for match in _FIELDS.finditer(lower):
                        name = match[1]
                        if name == _CONTENT_LENGTH:  # llhttp refuses a second one
                            value = match[2]
                            continue
                        if name == _TE:  # trailers need the per-field callbacks
                            self._per_field(buffer)
                            return
                        if name == _CONNECTION:
                            tokens = match[2] if tokens is None else tokens + b"," + match[2]
                        if cuts is None:
                            cuts = []
                        cuts.append(match.span())  # from the CRLF before the line to its own CRLF
                    if tokens is not None and tokens.strip() != _KEEP_ALIVE:
                        cuts = _listed(tokens, lower, cuts or [])
                    length = None if value is None else int(value) if value.isdigit() and len(value) <= 15 else -1
                    self._head = head = ResponseHead(raw, cuts)
                    self._quiet = False
                    parser = self._parser
                    # llhttp ends a message without a body with its head, and then forgets whether it keeps the
                    # connection: asked before the head's last byte when it may be one (1xx, x04,
                    # Content-Length: 0; llhttp checks the status is three digits).
                    if raw[9] == 49 or (raw[11] == 52 and raw[10] == 48) or length == 0:
                        parser.feed_data(raw[:-1])
                        head.keep_alive = keep_alive = parser.should_keep_alive()
                        upgrade = False
                        try:
                            parser.feed_data(_LF)
                        except httptools.HttpParserUpgrade:
                            upgrade = True  # refused below, once the client has had the head (1xx: this branch)
                    else:
                        parser.feed_data(raw)
                        head.keep_alive = keep_alive = parser.should_keep_alive()
                    status = parser.get_status_code()
                    if length is not None and length < 0:  # checked as the per-field path checks it, once
                        self._fail(UpstreamReset("invalid Content-Length"))  # llhttp has accepted the head
                    if keep_alive and status >= 200 and end <= _KEPT:
                        self._last_head, self._last_reading = raw, (length, cuts, status, None)
                self._started = True
                self._trailers = None
                if raw[7] == 48:  # b"0": the start was checked to be HTTP/1.1 or HTTP/1.0
                    head.version = "1.0"
                head.status = status
                head.content_length = length
                if status < 200 or status == 204 or status == 304 or self._head_request:
                    head.no_body = True
                elif length is None:
                    head.until_eof = self._until_eof = True
                    head.keep_alive = False
                if status >= 200:
                    self._heads = False
                self.sink.on_response_head(head)
                if status == 101 and upgrade:
                    self._fail(UpstreamReset("unexpected protocol upgrade from upstream"))
                if self._head_request:
                    # llhttp would wait for the body Content-Length announces: a fresh parser after each
                    # head of the answer to HEAD, as _feed_head_only does.
                    self._parser = self._plain = self._plain_parser()
                    if status >= 200:
                        self._head_request = False  # (no body follows: ended below)
                if not self._heads:  # the final head: its body, as far as this read holds it
                    rest = len(buffer) - end
                    if head.no_body or not (length or head.until_eof):
                        self._plain_end(buffer[end:] if rest else b"")
                    elif length is None:  # until the upstream closes
                        self._left = -1
                        if rest:
                            self.sink.on_response_body(buffer[end:])
                    elif rest == length:  # the whole body and nothing after it: the usual read, without a call
                        body = buffer[end:]
                        if not self._quiet:
                            self._parser.feed_data(body)
                        self._done = True
                        self.sink.on_response_end(None, body)
                    elif rest:
                        self._plain_body(buffer[end:], length)
                    else:
                        self._left = length
                    return
                if end == len(buffer):
                    return
                buffer = buffer[end:]
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamReset("unexpected protocol upgrade from upstream"))
        except httptools.HttpParserError as exc:
            self._parse_error(exc, "response")

    def _plain_body(self, data: bytes, left: int) -> None:
        """Body bytes of a plain response (`left` of its Content-Length still to come, -1 until the upstream
        closes). llhttp reads them too, without a call, so that it ends the message where this does."""
        if self._error is not None:
            raise self._error
        if left < 0:
            self.sink.on_response_body(data)
            return
        size = len(data)
        if size < left:
            self._left = left - size
            if not self._quiet:
                self._parser.feed_data(data)
            self.sink.on_response_body(data)
            return
        body = data if size == left else data[:left]
        if not self._quiet:
            self._parser.feed_data(body)
        self.sink.on_response_body(body)
        self._plain_end(data[left:] if size > left else b"")

    def _plain_end(self, after: bytes) -> None:
        """A plain response is complete; `after`: what followed it in the same read, which llhttp reads as
        it always did (it skips CR and LF). Anything else answers no request: the response still ends, so
        the client gets it whole, but the connection is not reused (`trailing`) and the failure ends it."""
        self._left = 0
        self._done = True
        if after:
            try:
                self._after(after)
            except UpstreamReset:
                self.trailing = True
                self.sink.on_response_end(None)
                raise
        self.sink.on_response_end(None)

    def _after(self, data: bytes) -> None:
        """Bytes after a plain response, which llhttp reads as it always did: it skips CR and LF; a message
        that begins answers no request, and after a head that closes the connection llhttp refuses any."""
        unbegun = self._unbegun
        unbegun.append(None)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if unbegun:
                unbegun.clear()
                self._parse_error(exc, "response")
        except httptools.HttpParserUpgrade:
            pass  # (a message began)
        if unbegun:
            unbegun.clear()
        else:
            self._fail(UpstreamReset("unsolicited response"))

    def _parse(self, data: bytes | memoryview, head_only: bool = False) -> None:
        """The parser with every callback, or the plain one with the body of a plain head."""
        if self._error is not None:
            raise self._error
        try:
            if head_only:
                assert isinstance(data, bytes)
                data = self._feed_head_only(data)
            if not data:
                return
            self._fed = size = len(data)
            if self._in_head:
                self._wire += size
                if self._wire > MAX_HEAD_BYTES + 8192:
                    self._fail(UpstreamReset("response head too large"))
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamReset("unexpected protocol upgrade from upstream"))
        except httptools.HttpParserError as exc:
            self._parse_error(exc, "response")
        finally:
            if self._ended:
                # The response ends once llhttp has read the rest of the read: what follows it decides
                # whether the connection may serve another request, before anyone can get it.
                self._ended = False
                if self._error is not None:
                    self.trailing = True
                self.sink.on_response_end(self._trailers)

    def _per_field(self, buffer: bytes) -> None:
        """The rest of this exchange goes to a parser with every callback (a fresh one: at a boundary) —
        unless an interim head read here closed the connection: llhttp then refuses whatever follows."""
        self._heads = False
        if not self._started or self._head.keep_alive or self._head_request:
            self._parser = httptools.HttpResponseParser(self)
        self._parse(buffer, self._head_request)

    def _feed_head_only(self, data: bytes) -> bytes:
        # llhttp cannot be told a response answers HEAD (it would wait for Content-Length bytes), so
        # the head is cut out here and parsed alone; a fresh parser then takes what follows.
        buffer = self._buffer + data
        while self._head_request:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    self._fail(UpstreamReset("response head too large"))
                self._buffer = buffer
                return b""
            head, buffer = buffer[: end + 4], buffer[end + 4 :]
            self._fed = len(head)
            self._parser.feed_data(head)  # emits the head (a final one ends the HEAD exchange)
            self._parser = httptools.HttpResponseParser(self)
        self._buffer = b""
        return buffer

    def eof(self) -> None:
        """The upstream closed: ends a response framed by the close, else raises UpstreamClosed/Reset."""
        if self._until_eof:
            self._until_eof = False
            self._done = True
            self.sink.on_response_end(None)
        elif not self._done:
            self._fail(UpstreamReset("upstream closed mid-response") if self._started else UpstreamClosed("closed"))

    def _malformed(self, reason: str) -> Exception:
        return UpstreamReset(reason)

    def on_message_begin(self) -> None:
        if self._done:
            self._fail(UpstreamReset("unsolicited response"))
        self._in_head = True
        self._wire = self._count = 0
        self._first = self._fed
        self._trailers = self._cl = self._te = self._tokens = None
        self._head = head = ResponseHead()
        self._fields = head.headers
        self._started = True

    def on_status(self, reason: bytes) -> None:
        self._head.reason += reason

    def on_headers_complete(self) -> None:
        head = self._head
        if self._first + self._wire > MAX_HEAD_BYTES:  # the reads it came in could hold a head too large
            self._check_size(head.headers)
        parser = self._parser
        head.keep_alive = keep_alive = parser.should_keep_alive()
        self._framing("1.1" if keep_alive and head.hop is None else parser.get_http_version())  # see _version
        head.status = status = parser.get_status_code()
        if status < 200 or status == 204 or status == 304 or self._head_request:
            head.no_body = True
        elif not head.chunked and head.content_length is None:
            head.until_eof = self._until_eof = True
            head.keep_alive = False
        self._in_head = False
        self.sink.on_response_head(head)
        if status >= 200 and self._head_request:
            self._head_request = False
            self._done = self._ended = True

    def on_body(self, data: bytes) -> None:
        self.sink.on_response_body(data)

    def on_message_complete(self) -> None:
        if self._head.status < 200 or self._done:
            return  # an interim (1xx) response, or the HEAD answer already ended
        self._until_eof = False
        self._done = self._ended = True
