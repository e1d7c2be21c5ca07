"""Request heads forwarded as read (meshctl/proxy/h1/request.py): the same bytes read by a reader that cuts
plain heads out (whole in one read, or split so that no head is whole) and by one that reads every head per
field give the same requests, the same failure, and the same request upstream."""

from __future__ import annotations

from typing import Any

import httptools
import pytest

from meshctl.proxy.errors import ProxyFailure
from meshctl.proxy.h1.codec import MAX_HEADERS, chunk, last_chunk
from meshctl.proxy.h1.request import RequestHead, RequestReader


class Sink:
    def __init__(self) -> None:
        self.heads: list[RequestHead] = []
        self.events: list[tuple[Any, ...]] = []

    def on_request_head(self, head: RequestHead) -> None:
        self.heads.append(head)
        self.events.append(("head", head.method, head.target, head.path, head.authority, head.version,
                            head.keep_alive, head.chunked, head.content_length, head.timeout,
                            tuple(head.headers)))  # fmt: skip

    def on_request(self, head: RequestHead) -> None:
        self.on_request_head(head)
        self.on_request_end(None)

    def on_request_body(self, data: bytes) -> None:
        if self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + data)
        else:
            self.events.append(("body", data))

    def on_request_end(self, trailers: Any) -> None:
        self.events.append(("end", tuple(trailers or ())))


def read(data: bytes, step: int, plain: bool) -> tuple[Sink, str]:
    sink = Sink()
    reader = RequestReader(sink, plain)
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
    except ProxyFailure as exc:
        return sink, f"{type(exc).__name__}: {exc}"
    return sink, ""


def upstream(sink: Sink) -> list[tuple[Any, ...]]:
    """What the upstream receives (each head as serialised, its body re-chunked when chunked), read back."""
    wire, heads, head = b"", iter(sink.heads), None
    for event in sink.events:
        if event[0] == "head":
            head = next(heads)
            wire += head.serialize()
        elif event[0] == "body":
            wire += chunk(event[1]) if head is not None and head.chunked else event[1]
        elif head is not None and head.chunked:
            wire += last_chunk(list(event[1]))
    again = Sink()
    RequestReader(again, False).feed(wire)
    return again.events


def same_reading(data: bytes) -> Sink:
    """The plain reader (whole, and split so that no head is whole) reads `data` as the per-field one does."""
    per_field, failure = read(data, len(data) or 1, plain=False)
    plain, plain_failure = read(data, len(data) or 1, plain=True)
    split, split_failure = read(data, 1, plain=True)
    assert plain_failure == failure == split_failure
    assert plain.events == per_field.events == split.events
    assert upstream(plain) == upstream(per_field)
    return plain


H = b"Host: books\r\n"
PLAIN = {
    "wrk": b"GET / HTTP/1.1\r\nHost: nginx-direct.bench.svc.cluster.local:80\r\n\r\n",
    "query and fragment": b"GET /a/b?c=d&e#f HTTP/1.1\r\n" + H + b"\r\n",
    "every method": b"".join(b"%b /m HTTP/1.1\r\n%b\r\n" % (m, H) for m in
                             (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE")),
    "content-length": b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
    "zero length": b"POST /p HTTP/1.1\r\n" + H + b"content-length: 0\r\n\r\n",
    "pipelined in one read": b"GET /1 HTTP/1.1\r\n" + H + b"\r\nPOST /2 HTTP/1.1\r\n" + H
                             + b"Content-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\n" + H + b"\r\n",
    "keep-alive line cut": b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\nA: 1\r\n\r\n",
    "every hop-by-hop name": b"GET / HTTP/1.1\r\nKeep-Alive: 5\r\n" + H + b"Proxy-Connection: x\r\nTE: trailers\r\n"
                             b"Trailer: X\r\nConnection: keep-alive\r\nB: 2\r\n\r\n",
    "connection names fields": b"GET / HTTP/1.1\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n" + H
                               + b"x-secret: t\r\nConnection: X-Other\r\nX-Other: o\r\n\r\n",
    "connection names host and length": b"POST / HTTP/1.1\r\nConnection: Host, Content-Length\r\n" + H
                                        + b"Content-Length: 1\r\n\r\nx",
    "connection close": b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    "proxy-connection close": b"GET / HTTP/1.1\r\n" + H + b"Proxy-Connection: close\r\n\r\n",
    "close, then another": b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n",
    "close, then blank lines": b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n\r\n\r\n",
    "odd spacing": b"GET / HTTP/1.1\r\nHost:books \r\nA:  spaced  \r\nB:\ttab\t\r\nC: \r\nD:\r\n\r\n",
    "host case": b"GET / HTTP/1.1\r\nhOsT: Books.NS:80\r\n\r\n",
    "expect 100-continue": b"PUT /u HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "obs-text value": b"GET / HTTP/1.1\r\n" + H + b"X: caf\xe9\r\n\r\n",
    "targets and hosts change": b"GET /a?x HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n"
                                b"GET /a?y HTTP/1.1\r\nHost: a\r\n\r\nGET /a?y HTTP/1.1\r\nHost: A\r\n\r\n",
}  # fmt: skip
PLAIN |= {  # a head again (remembered): the same reading as the first time
    "repeated": PLAIN["wrk"] * 3,
    "repeated with bodies": PLAIN["content-length"] * 2 + PLAIN["zero length"] * 2,
    "repeated with lines cut": (PLAIN["keep-alive line cut"] + PLAIN["connection names fields"]) * 2
                               + PLAIN["connection names fields"],
    "repeated close": PLAIN["connection close"] * 2,
    "repeated between others": PLAIN["wrk"] + PLAIN["query and fragment"] + PLAIN["wrk"] + PLAIN["host case"],
}  # fmt: skip
CUT_FIELDS = H + b"Connection: X-Secret, keep-alive\r\nX-Secret: s\r\nB: 1\r\n\r\n"
PLAIN |= {  # the same fields after other request lines (remembered): longer and shorter ones move the cuts
    "same fields, other lines": b"".join(b"%b %b HTTP/1.1\r\n" % (m, t) + CUT_FIELDS for m, t in
                                         ((b"GET", b"/a"), (b"DELETE", b"/a/much/longer/one?q=1"), (b"GET", b"/b"))),
    "same fields with a body, other lines": b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nhi"
                                            b"PUT /bb HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nho",
    "same fields, other lines, close": (b"GET /a HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n") * 2,
}  # fmt: skip
NOT_PLAIN = {
    "chunked": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
    "http/1.0": b"GET / HTTP/1.0\r\n" + H + b"\r\n",
    "absolute-form": b"GET http://books:7000/x?q HTTP/1.1\r\nHost: other\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n",
    "rare method": b"PROPFIND /d HTTP/1.1\r\n" + H + b"\r\n",
    "mesh-timeout": b"GET / HTTP/1.1\r\n" + H + b"mesh-timeout: 250ms\r\n\r\n",
    "leading blank line": b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    "empty host": b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
}  # fmt: skip
REFUSED = {
    "space before colon": b"GET / HTTP/1.1\r\n" + H + b"Content-Length : 1\r\n\r\nx",
    "tab before colon": b"GET / HTTP/1.1\r\n" + H + b"Connection\t: close\r\n\r\n",
    "duplicate content-length": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nab",
    "differing content-length": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\ncontent-length: 2\r\n\r\nab",
    "content-length and chunked": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked"
                                  b"\r\n\r\n0\r\n\r\n",
    "content-length spaced": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 \r\n\r\nx",
    "content-length signed": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +1\r\n\r\nx",
    "content-length too long": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0000000000000001\r\n\r\nx",
    "two hosts": b"GET / HTTP/1.1\r\n" + H + b"host: evil\r\n\r\n",
    "missing host": b"GET / HTTP/1.1\r\nA: 1\r\n\r\n",
    "nul in value": b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n",
    "cr in value": b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n",
    "lf in value": b"GET / HTTP/1.1\r\n" + H + b"X: a\nHost: evil\r\n\r\n",
    "bare lf ends the head": b"GET / HTTP/1.1\r\n" + H + b"\nGET /smuggled HTTP/1.1\r\n" + H + b"\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n",
    "empty name": b"GET / HTTP/1.1\r\n" + H + b": v\r\n\r\n",
    "line without colon": b"GET / HTTP/1.1\r\n" + H + b"X\r\n\r\n",
    "space in name": b"GET / HTTP/1.1\r\n" + H + b"X Y: 1\r\n\r\n",
    "lf in target": b"GET /a\nX: y HTTP/1.1\r\n" + H + b"\r\n",
    "cr lf in target": b"GET /a\r\nX:y HTTP/1.1\r\n" + H + b"\r\n",
    "tab in target": b"GET /a\tb HTTP/1.1\r\n" + H + b"\r\n",
    "upgrade": b"GET / HTTP/1.1\r\n" + H + b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    "after close": b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nPOST / HTTP/1.1\r\n" + H
                   + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "too many fields": b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
    "fine, then bad": b"GET /1 HTTP/1.1\r\n" + H + b"\r\nGET /2 HTTP/1.1\r\n" + H + b"X : 1\r\n\r\n",
}  # fmt: skip


CUT = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"x-secret", b"x-other"}
MIXED = {  # a plain head, then one that is not
    "lf between messages": b"GET / HTTP/1.1\r\n" + H + b"\r\n\nGET /2 HTTP/1.1\r\n" + H + b"\r\n",
    "chunked after plain": PLAIN["wrk"] + NOT_PLAIN["chunked"] + PLAIN["wrk"],
    "head split after plain": PLAIN["wrk"] + PLAIN["wrk"][:30],
}


@pytest.mark.parametrize("name", sorted(MIXED))
def test_mixed_reads_alike(name: str) -> None:
    sink = same_reading(MIXED[name])
    assert sink.heads[0].raw is not None


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_heads_are_read_and_forwarded_as_the_per_field_path_does(name: str) -> None:
    data = PLAIN[name]
    sink = same_reading(data)
    assert sink.heads and all(head.raw is not None for head in sink.heads)
    for head in sink.heads:  # the bytes as read, less the hop-by-hop lines (and the lines Connection names)
        wire = head.serialize()
        assert head.raw is not None and wire.startswith(head.raw[: head.raw.find(b"\r\n")])
        kept = [line for line in head.raw.split(b"\r\n") if line not in wire.split(b"\r\n")]
        assert {line.split(b":")[0].lower() for line in kept} <= CUT, kept


def test_a_plain_head_is_forwarded_in_its_bytes() -> None:
    data = PLAIN["wrk"]
    sink = same_reading(data)
    assert sink.heads[0].serialize() is data  # one read, one head, nothing to change: not even copied
    sink = same_reading(PLAIN["odd spacing"])
    assert sink.heads[0].serialize() == PLAIN["odd spacing"]
    assert sink.heads[0].headers == [(b"Host", b"books "), (b"A", b"spaced  "), (b"B", b"tab\t"), (b"C", b""),
                                     (b"D", b"")]  # fmt: skip


def test_a_head_read_again_is_not_read_again() -> None:
    sink = Sink()
    reader = RequestReader(sink)
    read_heads: list[bytes] = []
    first_reading = reader._read

    def reading(raw: bytes, size: int) -> Any:
        read_heads.append(raw)
        return first_reading(raw, size)

    reader._read = reading  # type: ignore[method-assign]
    a, b = PLAIN["keep-alive line cut"], PLAIN["wrk"]
    for data in (a, a, a + a + b + a, b"POST" + a[3:], b"POST" + a[3:]):
        reader.feed(data)
    assert read_heads == [a, b, a, b"POST" + a[3:]]
    assert sink.heads[1] is sink.heads[0] and sink.heads[2] is sink.heads[0]  # remembered, not read again
    assert sink.heads[0].serialize() == a.replace(b"\r\nConnection: keep-alive", b"")
    assert [h.method for h in sink.heads] == ["GET"] * 6 + ["POST"] * 2


def test_the_same_fields_after_another_request_line_are_not_read_again() -> None:
    sink = Sink()
    reader = RequestReader(sink)
    read_fields: list[bytes] = []
    first_reading = reader._read_fields

    def reading(raw: bytes, start: int) -> Any:
        read_fields.append(raw[start:])
        return first_reading(raw, start)

    reader._read_fields = reading  # type: ignore[method-assign]
    reader.feed(PLAIN["same fields, other lines"] + PLAIN["wrk"] + b"GET /c HTTP/1.1\r\n" + CUT_FIELDS)
    assert read_fields == [CUT_FIELDS, PLAIN["wrk"][16:], CUT_FIELDS]
    assert [head.target for head in sink.heads] == [b"/a", b"/a/much/longer/one?q=1", b"/b", b"/", b"/c"]
    assert sink.heads[1].serialize() == b"DELETE /a/much/longer/one?q=1 HTTP/1.1\r\n" + H + b"B: 1\r\n\r\n"


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_other_heads_take_the_per_field_path(name: str) -> None:
    sink = same_reading(NOT_PLAIN[name])
    assert all(head.raw is None for head in sink.heads)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_alike(name: str) -> None:
    data = REFUSED[name]
    same_reading(data)
    assert read(data, len(data), plain=True)[1], "refused"


def test_body_and_heads_across_reads() -> None:
    """A body split anywhere, with the next head behind it in the same read, and a head split in two."""
    data = PLAIN["pipelined in one read"] + PLAIN["content-length"] + PLAIN["wrk"]
    whole, _ = read(data, len(data), plain=False)
    for step in (2, 3, 5, 8, 13, 40, 64, 100):
        sink, failure = read(data, step, plain=True)
        assert not failure and sink.events == whole.events, step
    big = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 100000\r\n\r\n" + b"x" * 100_000 + PLAIN["wrk"]
    sink, failure = read(big, 4096, plain=True)
    assert not failure and [e[0] for e in sink.events] == ["head", "body", "end", "head", "end"]
    assert sink.events[1] == ("body", b"x" * 100_000) and sink.heads[1].raw is not None


def test_back_to_plain_heads_after_a_read_that_ends_between_messages() -> None:
    sink = Sink()
    reader = RequestReader(sink)
    reads = [NOT_PLAIN["chunked"], PLAIN["wrk"], PLAIN["wrk"][:20], PLAIN["wrk"][20:], PLAIN["wrk"],
             NOT_PLAIN["http/1.0"].replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n"), PLAIN["wrk"]]
    for data in reads:
        reader.feed(data)
    assert [head.raw is not None for head in sink.heads] == [False, True, False, True, False, True]


def test_ingress_reads_every_head_per_field() -> None:
    sink, _ = read(PLAIN["wrk"], 100, plain=False)
    assert sink.heads[0].raw is None


def test_llhttp_ends_lines_only_with_crlf() -> None:
    # Heads are cut at their first CRLFCRLF and their fields found after a CRLF: that is where llhttp ends
    # them only while it refuses any other line end. An httptools upgrade that loosens this must fail here.
    for data in (b"GET / HTTP/1.1\nHost: a\n\n", b"GET / HTTP/1.1\r\nHost: a\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nB: b\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\nX\r: b\r\n\r\n", b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"):  # fmt: skip
        parser = httptools.HttpRequestParser(Sink())
        with pytest.raises(httptools.HttpParserError):
            parser.feed_data(data)
