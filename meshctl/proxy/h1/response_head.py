"""A response head as the proxy forwards it: read from its bytes (forwarded as read, less the hop-by-hop
lines) or field by field (serialised again). response.py reads heads into these."""

from __future__ import annotations

from meshctl.proxy.h1.codec import Headers, _Head, _header_lines


def _parse_fields(raw: bytes) -> Headers:
    """The fields of a head as llhttp's callbacks give them: the name as read, the value without leading OWS."""
    start = raw.find(b"\r\n") + 2
    if start >= len(raw) - 2:
        return []
    fields = []
    for line in raw[start:-4].split(b"\r\n"):
        name, _, value = line.partition(b":")
        fields.append((name, value.lstrip(b" \t")))
    return fields


def without(raw: bytes, cuts: list[tuple[int, int]] | None) -> bytes:
    """`raw` less the ranges `cuts` (in order)."""
    if cuts is None:
        return raw
    pieces, at = [], 0
    for start, end in cuts:
        pieces.append(raw[at:start])
        at = end
    pieces.append(raw[at:])
    return b"".join(pieces)


class ResponseHead(_Head):
    __slots__ = ("status", "_reason", "until_eof", "no_body", "raw", "cuts", "forward", "added", "_fields")

    def __init__(self, raw: bytes | None = None, cuts: list[tuple[int, int]] | None = None,
                 forward: bytes | None = None) -> None:  # fmt: skip
        self.version = "1.1"
        self.keep_alive = True
        self.chunked = False
        self.content_length = None
        self.drop = None
        self.hop = None
        self.timeout = None
        self.status = 0
        self._reason = b""
        self.until_eof = False  # no framing: the body ends when the upstream closes
        self.no_body = False  # 1xx, 204, 304 or the answer to HEAD
        self.raw = raw  # the head as read, when it is forwarded in its bytes
        self.cuts = cuts  # ranges of `raw` left out: "\r\n" + a hop-by-hop line
        self.forward = forward  # without(raw, cuts), when the reader has it (a head it read before)
        self.added: Headers | None = None  # fields the proxy adds to a head forwarded as read
        self._fields: Headers | None = None if raw is not None else []

    @property
    def reason(self) -> bytes:
        raw = self.raw
        return self._reason if raw is None else raw[13 : raw.find(b"\r\n")]  # after "HTTP/1.x 200 "

    @reason.setter
    def reason(self, reason: bytes) -> None:
        self._reason = reason

    @property
    def headers(self) -> Headers:
        """The fields as parsed (a head forwarded as read parses them on first use: taps, retries)."""
        fields = self._fields
        if fields is None:
            assert self.raw is not None
            fields = self._fields = _parse_fields(self.raw) + (self.added or [])
        return fields

    def add(self, name: bytes, value: bytes) -> None:
        """A field the proxy adds, after those it read."""
        if self._fields is not None:
            self._fields.append((name, value))
        if self.raw is not None:
            if self.added is None:
                self.added = []
            self.added.append((name, value))

    def serialize(self, client_version: str, keep_alive: bool) -> tuple[bytes, bool, bool]:
        """(head bytes, re-chunk the body?, close after it?) for a client speaking `client_version`."""
        rechunk = False
        close = not keep_alive
        extra = b""
        if not self.no_body and (self.chunked or self.until_eof):
            if client_version == "1.1":
                rechunk = True
                extra = b"transfer-encoding: chunked\r\n"
            else:
                close = True  # an HTTP/1.0 client reads the body until the connection closes
        if self.status >= 200:
            if close:
                extra += b"connection: close\r\n"
            elif client_version == "1.0":
                extra += b"connection: keep-alive\r\n"
        raw = self.raw
        if raw is None:
            lines = _header_lines(self.headers, self.drop, self.hop)
            head = b"HTTP/%b %d %b\r\n%b%b\r\n" % (client_version.encode("ascii"), self.status, self.reason, lines,
                                                   extra)  # fmt: skip
            return head, rechunk, close
        if self.added:
            extra = b"".join(b"%b: %b\r\n" % field for field in self.added) + extra
        same = client_version == self.version
        cuts = self.cuts
        if same and not extra:
            if self.forward is not None:
                return self.forward, rechunk, close
            if cuts is None:
                return raw, rechunk, close  # nothing to change: the bytes as read
            if len(cuts) == 1:  # the usual change: one line out (Connection: keep-alive)
                start, end = cuts[0]
                return raw[:start] + raw[end:], rechunk, close
        pieces = [] if same else [b"HTTP/" + client_version.encode("ascii")]
        at = 0 if same else 8  # after "HTTP/1.x"
        if cuts is not None:
            for start, end in cuts:
                pieces.append(raw[at:start])
                at = end
        pieces += (raw[at:-2], extra, b"\r\n")  # a cut line leaves the CRLF before it to the next one
        return b"".join(pieces), rechunk, close
