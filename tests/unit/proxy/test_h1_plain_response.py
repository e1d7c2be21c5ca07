"""Response heads forwarded as read (meshctl/proxy/h1/response.py): whatever the path a head takes, whole in
one read (cut out and read from its bytes) or split (the parser with a callback per field), it is read,
forwarded and refused alike."""

from __future__ import annotations

import pytest

from meshctl.proxy.errors import BadRequest, UpstreamReset
from meshctl.proxy.h1.codec import MAX_HEADERS
from meshctl.proxy.h1.response import ResponseReader
from meshctl.proxy.h1.response_head import ResponseHead
from tests.unit.proxy.test_h1 import Responses


def _plain_and_per_field(data: bytes, head_request: bool = False) -> tuple[Responses, Responses]:
    """The same bytes read whole (heads cut out and read from their bytes) and one byte at a time (no head
    is ever whole in a read, so the parser with a callback per field reads them all); both fail alike."""
    plain, per_field = Responses(), Responses()
    failures = []
    for sink, step in ((plain, len(data)), (per_field, 1)):
        reader = ResponseReader(sink)
        reader.expect(head_request)
        try:
            for i in range(0, len(data), step):
                reader.feed(data[i : i + step])
            failures.append("")
        except UpstreamReset as exc:
            failures.append(str(exc))
    assert failures[0] == failures[1]
    return plain, per_field


def _reading(head: ResponseHead) -> tuple[object, ...]:
    return (head.status, head.reason, head.version, head.keep_alive, head.content_length, head.chunked,
            head.until_eof, head.no_body, head.headers)  # fmt: skip


NGINX = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 08:00:00 GMT\r\n"
         b"Content-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
         b'ETag: "6929a8f0-400"\r\nAccept-Ranges: bytes\r\n\r\nabc')  # fmt: skip
PLAIN_HEADS = {
    "nginx": NGINX,
    "no hop-by-hop field": b"HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n",
    "every hop-by-hop name": b"HTTP/1.1 200 OK\r\nKeep-Alive: 5\r\nA: 1\r\nProxy-Connection: x\r\nTE: trailers\r\n"
                             b"Trailer: X\r\nUpgrade: h2c\r\nConnection: keep-alive\r\nB: 2\r\n"
                             b"Content-Length: 0\r\n\r\n",
    "connection names fields": b"HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nA: 1\r\n"
                               b"x-secret: t\r\nConnection: X-Other\r\nX-Other: o\r\nContent-Length: 0\r\n\r\n",
    "connection names host and length": b"HTTP/1.1 200 OK\r\nConnection: Host, Content-Length\r\nHost: h\r\n"
                                        b"Content-Length: 0\r\n\r\n",
    "hop-by-hop line last": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nA: 1\r\nConnection: close\r\n\r\n",
    "only a hop-by-hop line": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
    "no fields": b"HTTP/1.1 204 No Content\r\n\r\n",
    "http/1.0 kept alive": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
    "http/1.0 until close": b"HTTP/1.0 200 OK\r\n\r\nbody",
    "interim then final": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                          b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
    "no reason": b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
    "spaced reason": b"HTTP/1.1 404  Not  Found \r\nContent-Length: 0\r\n\r\n",
    "empty value": b"HTTP/1.1 200 OK\r\nA: \r\nB: \r\nContent-Length: 0\r\n\r\n",
    "304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: x\r\n\r\n",
    # llhttp ends these with their head: whether they keep the connection is asked before it does
    "closing, empty": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    "closing 204": b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    "http/1.0 kept alive, empty": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 00\r\n\r\n",
    "interim, closing": b"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "leading zero": b"HTTP/1.1 200 OK\r\nContent-Length: 03\r\n\r\nabc",
    "404 with a body": b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PLAIN_HEADS))
@pytest.mark.parametrize("head_request", [False, True])
def test_plain_heads_read_as_the_per_field_path_reads_them(name: str, head_request: bool) -> None:
    plain, per_field = _plain_and_per_field(PLAIN_HEADS[name], head_request)
    assert all(h.raw is not None for h in plain.heads) and all(h.raw is None for h in per_field.heads)
    assert [_reading(h) for h in plain.heads] == [_reading(h) for h in per_field.heads]
    assert (plain.body, plain.ends) == (per_field.body, per_field.ends)
    for version in ("1.1", "1.0"):
        for keep_alive in (True, False):
            for a, b in zip(plain.heads, per_field.heads, strict=True):
                assert a.serialize(version, keep_alive) == b.serialize(version, keep_alive), (version, keep_alive)


def test_plain_head_is_forwarded_in_its_bytes() -> None:
    data = b"HTTP/1.1 200 OK\r\nA:  spaced  \r\nB:tight\r\nContent-Length: 0\r\n\r\n"
    plain, per_field = _plain_and_per_field(data)
    wire, _, _ = plain.heads[0].serialize("1.1", True)
    assert wire is plain.heads[0].raw  # nothing to change: not even copied
    assert wire == data
    assert per_field.heads[0].serialize("1.1", True)[0] == (
        b"HTTP/1.1 200 OK\r\nA: spaced  \r\nB: tight\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
    assert plain.heads[0].headers == per_field.heads[0].headers == [
        (b"A", b"spaced  "), (b"B", b"tight"), (b"Content-Length", b"0")]  # fmt: skip
    wire10, _, _ = plain.heads[0].serialize("1.0", True)
    assert wire10 == data.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"\r\n\r\n", b"\r\nconnection: keep-alive\r\n\r\n")
    # A Connection token with a colon names no field: "A:b: c" is field A, and stays.
    data = b"HTTP/1.1 200 OK\r\nConnection: a:b\r\nA:b: c\r\nContent-Length: 0\r\n\r\n"
    plain, per_field = _plain_and_per_field(data)
    assert plain.heads[0].serialize("1.1", True)[0] == b"HTTP/1.1 200 OK\r\nA:b: c\r\nContent-Length: 0\r\n\r\n"
    assert plain.heads[0].headers == per_field.heads[0].headers


def test_fields_added_to_a_plain_head() -> None:
    plain, per_field = _plain_and_per_field(NGINX)
    for head in (plain.heads[0], per_field.heads[0]):
        head.add(b"set-cookie", b"k=v")
    assert plain.heads[0].serialize("1.1", True) == per_field.heads[0].serialize("1.1", True)
    assert plain.heads[0].headers[-1] == (b"set-cookie", b"k=v")
    again, _ = _plain_and_per_field(NGINX)
    assert again.heads[0].headers[-1] == (b"Accept-Ranges", b"bytes")  # parsed first, then added to
    again.heads[0].add(b"set-cookie", b"k=v")
    assert again.heads[0].headers[-1] == (b"set-cookie", b"k=v")
    assert again.heads[0].serialize("1.1", True) == per_field.heads[0].serialize("1.1", True)


@pytest.mark.parametrize(
    "data",
    [
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # a blank line first
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
        b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",  # no space after the status
        b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n",
    ],
)
def test_heads_that_are_not_plain_take_the_per_field_path(data: bytes) -> None:
    whole, per_field = Responses(), Responses()
    outcomes: list[type[Exception] | None] = []
    for sink, step in ((whole, len(data)), (per_field, 1)):
        reader = ResponseReader(sink)
        reader.expect(False)
        try:
            for i in range(0, len(data), step):
                reader.feed(data[i : i + step])
            outcomes.append(None)
        except (BadRequest, UpstreamReset) as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]
    assert all(h.raw is None for h in whole.heads) or len(data) < 1000  # over 100 fields: never plain
    assert [_reading(h) for h in whole.heads] == [_reading(h) for h in per_field.heads]


def test_plain_head_failures() -> None:
    for data, failure in (
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1 \r\n\r\n", UpstreamReset),  # as the per-field path refuses it
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", UpstreamReset),
        (b"HTTP/1.1 200 OK\r\nA : 1\r\n\r\n", UpstreamReset),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n b\r\n\r\n", UpstreamReset),
    ):
        reader = ResponseReader(Responses())
        reader.expect(False)
        with pytest.raises(failure):
            reader.feed(data)
    reader = ResponseReader(Responses())
    reader.expect(False)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_plain_and_per_field_exchanges_alternate_on_one_connection() -> None:
    sink = Responses()
    reader = ResponseReader(sink)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 2\r\n\r\n"
    for i, data in enumerate((NGINX, chunked, NGINX, NGINX[:20], NGINX[20:], NGINX)):
        if i != 4:  # the rest of a head split across two reads
            reader.expect(False)
        reader.feed(data)
    assert [h.raw is not None for h in sink.heads] == [True, False, True, False, True]
    assert sink.ends == 5 and sink.body == b"abchiabcabcabc"


def test_a_plain_body_ends_at_its_length_across_reads_and_bytes_after_it_spoil_the_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    sink = Responses()
    reader = ResponseReader(sink)
    reader.expect(False)
    for data in (head, b"0123", b"45678"):
        reader.feed(data)
    assert sink.ends == 0 and sink.body == b"012345678"
    reader.feed(b"9")
    assert sink.ends == 1 and sink.body == b"0123456789" and not reader.trailing
    reader.expect(False)
    reader.feed(head + b"01\r\n\r\n")  # body bytes, whatever they look like
    assert sink.body == b"0123456789" + b"01\r\n\r\n" and not reader.trailing
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(b"5678HTTP/1.1 200 OK\r\n\r\n")  # the rest of the body, then bytes nobody asked for
    assert sink.ends == 2 and reader.trailing and sink.body.endswith(b"01\r\n\r\n5678")  # still ended whole
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(b"HTTP/1.1 200 OK\r\n\r\n")  # and the reader stays failed


@pytest.mark.parametrize("head_request, wire", [
    (True, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"),  # HEAD: no body follows
    (False, b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
    (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nx"),
    (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc"),
])  # fmt: skip
def test_bytes_after_a_whole_plain_response_in_its_read_end_it_and_spoil_the_connection(
    head_request: bool, wire: bytes
) -> None:
    sink = Responses()
    reader = ResponseReader(sink)
    reader.expect(head_request)
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(wire)
    assert sink.ends == 1 and reader.trailing and sink.body in (b"", b"ab")


def test_line_ends_after_a_plain_response_are_skipped_and_an_unframed_body_runs_to_the_close() -> None:
    sink = Responses()
    reader = ResponseReader(sink)
    reader.expect(False)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab\r\n")
    assert sink.ends == 1 and sink.body == b"ab" and not reader.trailing
    reader.expect(False)
    reader.feed(b"HTTP/1.1 200 OK\r\n\r\ncd")
    reader.feed(b"HTTP/1.1 200 OK\r\n\r\n")  # only the close ends it: these are body bytes
    assert sink.ends == 1 and sink.body == b"abcdHTTP/1.1 200 OK\r\n\r\n"
    reader.eof()
    assert sink.ends == 2 and sink.heads[-1].until_eof


@pytest.mark.parametrize("head_request, wire", [
    (False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
    (True, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
])  # fmt: skip
def test_a_response_the_per_field_parser_reads_ends_only_after_the_rest_of_its_read(
    head_request: bool, wire: bytes
) -> None:
    """Bytes after it must be seen before the response ends (and its connection is handed on)."""
    seen: list[bool] = []
    sink = Responses()
    reader = ResponseReader(sink)
    sink.on_response_end = lambda trailers, last=b"": seen.append(reader.trailing)  # type: ignore[method-assign]
    reader.expect(head_request)
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(wire)
    assert seen == [True]
    sink, seen = Responses(), []
    reader = ResponseReader(sink)
    sink.on_response_end = lambda trailers, last=b"": seen.append(reader.trailing)  # type: ignore[method-assign]
    reader.expect(head_request)
    reader.feed(wire[: wire.rindex(b"HTTP/")])
    assert seen == [False]


@pytest.mark.parametrize("head, after, failure", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"\r\nxyz", "unsolicited"),  # it begins a message at once
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 101 Up\r\nUpgrade: x\r\n"
                                                      b"Connection: upgrade\r\n\r\n", "unsolicited"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n",
     "malformed response"),  # llhttp reads no message after one that closes the connection
])  # fmt: skip
def test_what_follows_a_plain_response_in_its_read_or_the_next(head: bytes, after: bytes, failure: str) -> None:
    for together in (True, False):
        sink = Responses()
        reader = ResponseReader(sink)
        reader.expect(False)
        with pytest.raises(UpstreamReset, match=failure):
            if together:
                reader.feed(head + after)
            else:
                reader.feed(head + b"\r\n")  # line ends are skipped
                assert sink.ends == 1 and not reader.trailing
                reader.feed(after)
        assert sink.ends == 1 and reader.trailing == together


def test_a_repeated_head_is_read_as_the_first_time_and_any_other_afresh() -> None:
    """A connection keeps the last short plain head it read: the same bytes again are read the same, and a
    head that differs, however little, is read from its own bytes."""
    other = NGINX.replace(b"Connection", b"Xonnection")  # as long, with no hop-by-hop line to leave out
    sink = Responses()
    reader = ResponseReader(sink)
    for data in (NGINX, NGINX, other, NGINX):
        reader.expect(False)
        reader.feed(data)
        reader = reader if sink.heads[-1].keep_alive else ResponseReader(sink)
    once = [Responses() for _ in range(3)]
    for fresh, data in zip(once, (NGINX, other, NGINX), strict=True):
        single = ResponseReader(fresh)
        single.expect(False)
        single.feed(data)
    expected = [once[0].heads[0], once[0].heads[0], once[1].heads[0], once[2].heads[0]]
    assert [_reading(h) for h in sink.heads] == [_reading(h) for h in expected]
    for version in ("1.1", "1.0"):
        for keep_alive in (True, False):
            assert [h.serialize(version, keep_alive) for h in sink.heads] == \
                [h.serialize(version, keep_alive) for h in expected]  # fmt: skip
    assert sink.heads[1].forward == NGINX[: NGINX.index(b"\r\n\r\n") + 4].replace(b"\r\nConnection: keep-alive", b"")
    cut = NGINX.index(b"\r\nConnection")
    assert [h.cuts for h in sink.heads] == [[(cut, cut + 24)], [(cut, cut + 24)], None, [(cut, cut + 24)]]


def test_a_repeated_head_frames_its_body_and_what_follows_it_as_the_first_time() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n"
    sink = Responses()
    reader = ResponseReader(sink)
    for reads in ((head + b"ab", b"cd\r\n"), (head, b"a", b"bcd"), (head + b"abcd",)):
        reader.expect(False)
        for data in reads:
            reader.feed(data)
    assert sink.ends == 3 and sink.body == b"abcd" * 3 and not reader.trailing
    reader.expect(False)
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(head + b"abcdHTTP/1.1 200 OK\r\n\r\n")
    assert sink.ends == 4 and reader.trailing
    reader = ResponseReader(sink)
    reader.expect(False)
    reader.feed(head + b"abcd")
    with pytest.raises(UpstreamReset, match="unsolicited"):
        reader.feed(head + b"abcd")  # not asked for: the same head as the last is no exception
