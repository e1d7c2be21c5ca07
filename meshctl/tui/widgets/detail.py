"""The detail of one request: what it was, who talked to whom (identities, TLS), headers, timings and
the body previews when the tap asked for bodies.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from meshctl.tapping.codec import iso_time
from meshctl.tapping.events import BodyChunk, Endpoint, Headers
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.render import grpc_name
from meshctl.tapping.top import human_us

BODY_PREVIEW = 2048  # characters of each body shown


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _pairs(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _endpoint(endpoint: Endpoint) -> str:
    where = "/".join(part for part in (endpoint.namespace, endpoint.workload) if part)
    pod = f" pod {endpoint.pod}" if endpoint.pod else ""
    return f"{endpoint.address}  {where or '(outside the mesh)'}{pod}"


def _headers(headers: Headers) -> RenderableType:
    return _pairs(list(headers)) if headers else Text("(none)", style="dim")


def printable(data: bytes) -> str:
    """A body as text that cannot drive the terminal: bad UTF-8 and control characters (but newlines and
    tabs, which a body's layout needs) become \\xNN escapes."""
    text = data.decode("utf-8", "backslashreplace")
    return "".join(
        f"\\x{ord(c):02x}" if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 else c for c in text
    )


def _body(chunk: BodyChunk | None) -> RenderableType:
    if chunk is None:
        return Text("(not captured: tap with --bodies)", style="dim")
    text = printable(chunk.data)
    cut = chunk.truncated or len(text) > BODY_PREVIEW
    note = f"  … truncated ({len(chunk.data)} bytes captured)" if cut else ""
    return Group(Text(text[:BODY_PREVIEW]), Text(note, style="dim")) if note else Text(text)


def describe(exchange: Exchange) -> RenderableType:
    """Everything the tap reported about one request, as sections."""
    req, rsp, end = exchange.request, exchange.response, exchange.end
    parts: list[RenderableType] = []
    if req is None:
        parts.append(Text(f"{exchange.instance}:{exchange.id}: the request's start was not received", style="dim"))
    else:
        parts.append(Text.assemble((f"{req.method} ", "bold"), f"{req.authority}{req.path}"))
        parts.append(_section("Request"))
        parts.append(_pairs([
            ("id", f"{exchange.instance}:{exchange.id}"),
            ("time", iso_time(req.timestamp_us)),
            ("direction", f"{req.direction} (proxy {exchange.instance})"),
            ("route", req.route or "[DEFAULT]"),
            ("trace id", exchange.trace_id or "-"),
        ]))  # fmt: skip
        parts.append(_section("Identities"))
        parts.append(_pairs([
            ("tls", "mTLS" if req.tls else "plaintext (no mTLS)"),
            ("source", _endpoint(req.source)),
            ("source id", req.source.identity or "-"),
            ("destination", _endpoint(req.destination)),
            ("destination id", req.destination.identity or "-"),
        ]))  # fmt: skip
        parts.append(_section("Request headers"))
        parts.append(_headers(req.headers))
    parts.append(_section("Response"))
    if rsp is None and end is None:
        parts.append(Text("in flight", style="dim"))
    else:
        rows = [("status", str(rsp.http_status) if rsp is not None else "no response")]
        if end is not None:
            if end.grpc_status is not None:
                rows.append(("grpc-status", f"{grpc_name(end.grpc_status)} ({end.grpc_status})"))
            if end.failure:
                rows.append(("failure", end.failure))
            rows.append(("bytes", f"{end.request_bytes} B sent, {end.response_bytes} B received"))
        verdict = {True: "success", False: "failure", None: "in flight"}[exchange.success]
        rows.append(("outcome", verdict))
        parts.append(_pairs(rows))
        if rsp is not None:
            parts.append(_section("Response headers"))
            parts.append(_headers(rsp.headers))
        if end is not None and end.trailers:
            parts.append(_section("Trailers"))
            parts.append(_headers(end.trailers))
    parts.append(_section("Timings"))
    parts.append(_pairs([
        ("time to first byte", human_us(rsp.since_request_init_us) if rsp is not None else "-"),
        ("response body", human_us(end.since_response_init_us) if end is not None and end.response_started else "-"),
        ("total", human_us(end.since_request_init_us) if end is not None else "in flight"),
    ]))  # fmt: skip
    parts.append(_section("Request body"))
    parts.append(_body(exchange.request_body))
    parts.append(_section("Response body"))
    parts.append(_body(exchange.response_body))
    return Group(*parts)


def signature(exchange: Exchange | None) -> tuple[object, ...]:
    """What changes as a request's events arrive: redraw the detail only when it does."""
    if exchange is None:
        return ()
    return (exchange, exchange.request, exchange.response, exchange.end, exchange.request_body, exchange.response_body)


class DetailPane(VerticalScroll):
    DEFAULT_CSS = """
    DetailPane { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static("", expand=True)
        self._shown: tuple[object, ...] = (None,)

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, exchange: Exchange | None) -> None:
        key = signature(exchange)
        if key == self._shown:
            return
        moved = not key or not self._shown or key[0] is not self._shown[0]
        self._shown = key
        self._body.update(describe(exchange) if exchange is not None else Text("No request selected.", style="dim"))
        if moved:
            self.scroll_home(animate=False)
