"""Sans-IO HTTP/1.1 requests over httptools: the reader of a client connection and the request head.

What both directions share (limits, framing checks, hop-by-hop fields) is in codec.py.
"""

from __future__ import annotations

from typing import Protocol

import httptools

from meshctl.proxy.errors import BadRequest, HeadTooLarge
from meshctl.proxy.h1.codec import (
    _HOST,
    MAX_HEAD_BYTES,
    Headers,
    _Head,
    _header_lines,
    _Reader,
    _reraise_callback_bug,
)


class RequestHead(_Head):
    __slots__ = ("headers", "method", "target", "authority", "path")

    def __init__(self) -> None:
        self.version = "1.1"
        self.headers: Headers = []
        self.keep_alive = True
        self.chunked = False
        self.content_length = None
        self.drop = None
        self.hop = None
        self.timeout = None
        self.method = ""
        self.target = b""  # origin-form target sent upstream (path + query), "*" for OPTIONS *
        self.path = ""  # path without the query, for route matching
        self.authority = ""

    def serialize(self) -> bytes:
        """The head as sent upstream: origin-form, HTTP/1.1, hop-by-hop headers dropped."""
        framing = b"transfer-encoding: chunked\r\n\r\n" if self.chunked else b"\r\n"
        return b"".join((self.method.encode("ascii"), b" ", self.target, b" HTTP/1.1\r\n",
                         _header_lines(self.headers, self.drop), framing))  # fmt: skip


class RequestSink(Protocol):
    def on_request_head(self, head: RequestHead) -> None: ...

    def on_request_body(self, data: bytes) -> None: ...

    def on_request_end(self, trailers: Headers | None) -> None: ...


class RequestReader(_Reader):
    """Downstream requests → sink calls. feed() raises BadRequest/HeadTooLarge; the connection is then done."""

    _head: RequestHead

    def __init__(self, sink: RequestSink) -> None:
        super().__init__()
        self._sink = sink
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._hosts = 0

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._fed = size = len(data)
        if self._in_head:
            self._wire += size
            if self._wire > MAX_HEAD_BYTES + 8192:
                self._fail(HeadTooLarge("header section too large"))
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadRequest("protocol upgrades and CONNECT are not supported"))
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise self._error from None
            _reraise_callback_bug(exc)
            self._fail(BadRequest(f"malformed request: {exc}"))

    def on_message_begin(self) -> None:
        self._in_head = True
        self._wire = self._count = self._hosts = 0
        self._first = self._fed
        self._trailers = self._cl = self._te = self._tokens = None
        self._head = head = RequestHead()
        self._fields = head.headers
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
        self._sink.on_request_end(self._trailers)
