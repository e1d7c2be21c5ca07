"""A fixed stream of tap events covering every kind and rendering case, for golden and replay tests."""

from __future__ import annotations

from meshctl.tapping.events import (
    INBOUND,
    OUTBOUND,
    BodyChunk,
    Dropped,
    Endpoint,
    RequestInit,
    ResponseEnd,
    ResponseInit,
    TapEvent,
)

T0 = 1_790_000_000_000_000  # µs since the epoch
WEB = Endpoint("127.77.1.1:7000", "webapp.booksapp.serviceaccount.identity.meshctl.cluster.local", "webapp",
               "booksapp", "webapp-0")  # fmt: skip
WEB_OUT = Endpoint("127.77.1.1:40312", WEB.identity, "webapp", "booksapp", "webapp-0")
BOOKS = Endpoint("127.77.3.1:4143", "books.booksapp.serviceaccount.identity.meshctl.cluster.local", "books", "booksapp")
INGRESS = Endpoint("127.77.0.4:51012", "ingress.booksapp.serviceaccount.identity.meshctl.cluster.local", "ingress",
                   "booksapp")  # fmt: skip
RATINGS = Endpoint("127.77.4.1:4143", "ratings.booksapp.serviceaccount.identity.meshctl.cluster.local", "ratings",
                   "booksapp")  # fmt: skip
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def scenario() -> list[TapEvent]:
    i = "webapp-0"
    return [
        RequestInit(
            i,
            1,
            T0,
            INBOUND,
            INGRESS,
            WEB,
            True,
            "GET",
            "webapp.booksapp.svc.cluster.local:7000",
            "/books",
            "GET /books",
            (
                ("accept", "text/html"),
                ("authorization", "[redacted]"),
                ("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01"),
            ),
        ),  # fmt: skip
        RequestInit(
            i,
            2,
            T0 + 500,
            OUTBOUND,
            WEB_OUT,
            BOOKS,
            True,
            "POST",
            "books.booksapp.svc.cluster.local:7002",
            "/books?author=3&q=a b",
            "",
            (("content-type", "application/json"),),
        ),  # fmt: skip
        BodyChunk(i, 2, True, b'{"title": "Dune"}'),
        ResponseInit(i, 2, T0 + 4_100, 3_600, 500, (("content-type", "text/plain"),)),
        BodyChunk(i, 2, False, b"\xff\xfeboom", truncated=True),
        ResponseEnd(i, 2, T0 + 4_300, 3_800, 200, 17, 9, None, "", ()),
        ResponseInit(i, 1, T0 + 9_000, 9_000, 200, (("content-type", "text/html"), ("set-cookie", "[redacted]"))),
        ResponseEnd(i, 1, T0 + 9_132, 9_132, 132, 0, 1505),
        RequestInit(
            i,
            3,
            T0 + 20_000,
            OUTBOUND,
            WEB_OUT,
            RATINGS,
            True,
            "POST",
            "ratings.booksapp.svc.cluster.local:7003",
            "/ratings.Ratings/Get",
            "",
            (("content-type", "application/grpc"), ("x-b3-traceid", "80f198ee56343ba8")),
        ),  # fmt: skip
        ResponseInit(i, 3, T0 + 150_000, 130_000, 200, (("content-type", "application/grpc"),)),
        BodyChunk(i, 3, False, b"\x00\x00\x00\x00\x05\n\x03abc"),  # a gRPC frame: control characters
        ResponseEnd(
            i, 3, T0 + 150_400, 130_400, 400, 12, 0, 14, "", (("grpc-status", "14"), ("grpc-message", "no endpoints"))
        ),  # fmt: skip
        RequestInit(
            "webapp-1",
            1,
            T0 + 30_000,
            OUTBOUND,
            Endpoint("127.77.1.2:40999", WEB.identity, "webapp", "booksapp", "webapp-1"),
            Endpoint("127.77.2.1:4143", "", "authors", "booksapp"),
            False,
            "GET",
            "authors.booksapp.svc.cluster.local:7001",
            "/authors/1",
            "GET /authors/{id}",
        ),  # fmt: skip
        ResponseEnd(
            "webapp-1",
            1,
            T0 + 1_030_000,
            1_000_000,
            0,
            0,
            0,
            None,
            "connect to 127.77.2.1:4143 refused",
            (),
            response_started=False,
        ),  # fmt: skip
        Dropped("webapp-1", 3, 2),
    ]
