"""HTTP/1.1 request smuggling and parser vectors on the ingress, outbound and inbound (mTLS) ports.

Each vector is sent on a fresh connection (with `Connection: close`, so the proxy ends it after one
answer). What must hold, whatever the proxy decides:
- every answer the proxy produces itself is a 4xx (501 for an unknown transfer coding), never a hang;
- the backend saw only what was intended: no request, or exactly the vector's one intended request, and
  nothing it could not parse (a desync shows up there, or as a request the client got no answer for);
- each request the backend saw is matched by the 2xx the client received for it (its `x-seen`).
Vectors whose intended request is None must be refused.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.reliability.h1mesh import AUTHORITY, H1Mesh, Seen, read_replies

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KINDS = ("ingress", "outbound", "inbound")
H = f"Host: {AUTHORITY}\r\nConnection: close\r\n".encode()
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: " + AUTHORITY.encode() + b"\r\n\r\n"
BACKEND_GRACE_S = 0.05  # for a request written upstream after the answer reached the client


@dataclass(frozen=True)
class Vector:
    raw: bytes
    intended: tuple[str, str, bytes] | None  # (method, path, body) when it may be passed; None: refused
    must_pass: bool = False  # a well-formed control: proves the setup passes what it should


def post(headers: bytes, body: bytes, path: bytes = b"/v") -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\n" + H + headers + b"\r\n" + body


VECTORS: dict[str, Vector] = {
    "control: GET": Vector(b"GET /v HTTP/1.1\r\n" + H + b"\r\n", ("GET", "/v", b""), must_pass=True),
    "control: content-length": Vector(post(b"Content-Length: 5\r\n", b"hello"), ("POST", "/v", b"hello"), True),
    "control: chunked": Vector(
        post(b"Transfer-Encoding: chunked\r\n", b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"), ("POST", "/v", b"hello"), True
    ),
    # CL and TE together: TE wins (RFC 9112 6.1) or the request is refused; never both framings.
    "cl.te": Vector(post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG"), ("POST", "/v", b"")),
    "te.cl": Vector(
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
        ("POST", "/v", b"SMUGGLED"),
    ),
    "cl.te smuggling a request": Vector(
        post(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % (5 + len(SMUGGLED)), b"0\r\n\r\n" + SMUGGLED),
        ("POST", "/v", b""),
    ),
    "cl+cl differing": Vector(post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), None),
    "cl+cl equal": Vector(post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), ("POST", "/v", b"hello")),
    "cl list": Vector(post(b"Content-Length: 5, 6\r\n", b"hello!"), None),
    "cl negative": Vector(post(b"Content-Length: -1\r\n", b"hello"), None),
    "cl plus sign": Vector(post(b"Content-Length: +5\r\n", b"hello"), None),
    "cl hex": Vector(post(b"Content-Length: 0x5\r\n", b"hello"), None),
    "cl overflow": Vector(post(b"Content-Length: 99999999999999999999999\r\n", b"hello"), None),
    "te chunked, identity": Vector(post(b"Transfer-Encoding: chunked, identity\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te identity": Vector(post(b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n", b"hello"), None),
    "te xchunked": Vector(post(b"Transfer-Encoding: xchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te twice": Vector(
        post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None
    ),
    "te space before colon": Vector(
        post(b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n" + SMUGGLED), None
    ),
    "te obs-fold": Vector(post(b"Transfer-Encoding:\r\n chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), None),
    "te on a GET": Vector(
        b"GET /v HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ("GET", "/v", b"")
    ),
    "obs-fold": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", None),
    "bare LF": Vector(b"GET /v HTTP/1.1\n" + H.replace(b"\r\n", b"\n") + b"\n", ("GET", "/v", b"")),
    "bare LF after CRLF head": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-A: a\n\r\n", ("GET", "/v", b"")),
    "bare CR in a value": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", None),
    "NUL in a value": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", None),
    "NUL in a name": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-\x00A: a\r\n\r\n", None),
    "space in a name": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X A: a\r\n\r\n", None),
    "chunk size not hex": Vector(post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"), None),
    "chunk size negative": Vector(post(b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"), None),
    "chunk size 0x": Vector(post(b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"), None),
    "chunk size overflow": Vector(
        post(b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffff5\r\nhello\r\n0\r\n\r\n"), None
    ),
    "chunk longer than its size": Vector(
        post(b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED), None
    ),
    "chunk without CRLF": Vector(post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"), None),
    "oversized head": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", None),
    "oversized target": Vector(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + H + b"\r\n", None),
    "absolute-form": Vector(
        b"GET http://" + AUTHORITY.encode() + b"/abs HTTP/1.1\r\n" + H + b"\r\n", ("GET", "/abs", b"")
    ),
    # heads that look plain to a reader that cuts them out of the bytes (meshctl/proxy/h1/request.py)
    "cl tab before colon": Vector(post(b"Content-Length\t: 5\r\n", b"hello"), None),
    "host repeated in lower case": Vector(b"GET /v HTTP/1.1\r\n" + H + b"host: other\r\n\r\n", None),
    "bare LF hiding a Host": Vector(b"GET /v HTTP/1.1\r\n" + H + b"X-A: a\nHost: other\r\n\r\n", None),
    "bare LF hiding a length": Vector(post(b"X-A: a\nContent-Length: 5\r\n", b"hello"), None),
    "CRLF in the target": Vector(b"GET /v\r\nX-A:b HTTP/1.1\r\n" + H + b"\r\n", None),
    "length 0 then a request": Vector(post(b"Content-Length: 0\r\n", SMUGGLED), ("POST", "/v", b"")),
    "missing Host": Vector(b"GET /v HTTP/1.1\r\nConnection: close\r\n\r\n", None),
    "two Hosts": Vector(b"GET /v HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n", None),
    "HTTP/1.0 with TE": Vector(
        b"POST /v HTTP/1.0\r\nHost: " + AUTHORITY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        None,
    ),
    "bad version": Vector(b"GET /v HTTP/1.2x\r\n" + H + b"\r\n", None),
    "CONNECT": Vector(b"CONNECT " + AUTHORITY.encode() + b" HTTP/1.1\r\n" + H + b"\r\n", None),
}


@pytest.fixture(scope="module")
def mesh() -> Iterator[H1Mesh]:
    with H1Mesh().running() as running:
        yield running


def path_of(target: str) -> str:
    """The path of an origin-form or absolute-form target."""
    if "://" in target:
        rest = target.split("://", 1)[1]
        return rest[rest.find("/") :] if "/" in rest else "/"
    return target


def describe(seen: list[Seen]) -> list[str]:
    return [f"{s.method} {s.target!r} body={s.body!r}" for s in seen]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(VECTORS))
def test_vector_is_refused_or_passed_as_exactly_the_intended_request(mesh: H1Mesh, kind: str, name: str) -> None:
    vector = VECTORS[name]
    mesh.backend.take()
    with mesh.connect(kind) as sock:
        with contextlib.suppress(OSError):  # refused while still sending (oversized heads): read the answer
            sock.sendall(vector.raw)
        replies, leftover = read_replies(sock)
    time.sleep(BACKEND_GRACE_S)
    seen = mesh.backend.take()
    statuses = [r.status for r in replies]

    assert all(s.method != "UNPARSABLE" for s in seen), f"the backend got unparsable bytes: {describe(seen)}"
    assert all("/smuggled" not in s.target for s in seen), f"smuggled: {describe(seen)}"
    assert replies, f"no answer at all (leftover {leftover[:80]!r})"
    assert len(seen) <= 1, f"one request sent, the backend saw {describe(seen)}"
    for reply in replies:
        assert reply.status < 300 or 400 <= reply.status < 500 or reply.status == 501, statuses
    passed = [r for r in replies if r.status < 300]
    assert [r.headers.get("x-seen") for r in passed] == [s.label() for s in seen], (statuses, describe(seen))
    if vector.must_pass:
        assert statuses == [200] and len(seen) == 1, (statuses, describe(seen))
    if seen:
        assert vector.intended is not None, f"should have been refused, was passed as {describe(seen)}"
        method, path, body = vector.intended
        assert (seen[0].method, path_of(seen[0].target), seen[0].body) == (method, path, body)
    else:
        assert any(400 <= s < 500 or s == 501 for s in statuses), statuses


BODY_ERRORS = [name for name in VECTORS if name.startswith("chunk ")]


@pytest.mark.parametrize("kind", KINDS)
def test_body_errors_leave_no_failure_behind_in_the_proxy(mesh: H1Mesh, kind: str) -> None:
    mesh.take_loop_errors()
    for name in BODY_ERRORS:
        with mesh.connect(kind) as sock:
            sock.sendall(VECTORS[name].raw)
            read_replies(sock)
    mesh.collect_garbage()  # "Task exception was never retrieved" is reported when the task is collected
    assert mesh.take_loop_errors() == []
