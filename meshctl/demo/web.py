"""The HTTP plumbing the demo services share: a tiny router on ThreadingHTTPServer and a pooled client
that reaches other services through the sidecar's outbound listener.

Kept on the standard library on purpose: the demo exercises the mesh, not a web framework.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

MAX_BODY = 1024 * 1024  # requests larger than this are refused: the demo takes small JSON or forms


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: tuple[str, ...] = ()  # groups of the route's pattern

    def json(self) -> object:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, value: object) -> Response:
    return Response(status, json.dumps(value).encode() + b"\n", "application/json")


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode() + b"\n")


Handler = Callable[[Request], Response]


class HTTPFailure(Exception):
    """Ends a request with this status: raised by handlers and by the downstream client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                return handler(Request(**{**request.__dict__, "params": match.groups()}))
            except HTTPFailure as failure:
                return text_response(failure.status, failure.message)
        return text_response(405 if allowed else 404, "method not allowed" if allowed else "not found")


def log(name: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} {name} {message}\n")
    sys.stderr.flush()


def parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _handler_class(router: Router, name: str, access_log: bool) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the sidecar reuses its connections to the app
        server_version = name

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            try:
                body = self._read_body()
            except HTTPFailure as failure:
                self._send(text_response(failure.status, failure.message))
                self.close_connection = True
                return
            request = Request(
                method=self.command,
                path=path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = router.dispatch(request)
            except Exception as exc:  # a bug in a handler must not kill the connection thread silently
                log(name, f"error: {self.command} {path}: {exc!r}")
                response = text_response(500, "internal error")
            self._send(response)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                total = 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY:
                        raise HTTPFailure(413, "body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise HTTPFailure(413, "body too large")
            return self.rfile.read(length) if length else b""

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            if access_log:
                log(name, format % args)

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve(router: Router, listen: str, name: str, *, access_log: bool = False) -> int:
    """Serve until SIGTERM/SIGINT, then stop accepting and return 0."""
    host, port = parse_hostport(listen)
    try:
        server = _Server((host, port), _handler_class(router, name, access_log))
    except OSError as exc:
        log(name, f"cannot listen on {listen}: {exc.strerror or exc}")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on the serving thread.
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(name, f"listening on {listen}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log(name, "stopped")
    return 0


class Downstream:
    """Requests to one service through the sidecar's outbound listener, on pooled keep-alive connections."""

    def __init__(self, outbound: str, authority: str, *, timeout_s: float = 10.0, max_idle: int = 16) -> None:
        self.host, self.port = parse_hostport(outbound)
        self.authority = authority
        self.timeout_s = timeout_s
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get_json(self, path: str) -> object:
        status, body = self.request("GET", path)
        return _json_or_fail(self.authority, "GET", path, status, body)

    def post_json(self, path: str, value: object) -> tuple[int, object]:
        status, body = self.request("POST", path, json.dumps(value).encode(), "application/json")
        if status >= 500:
            raise HTTPFailure(status, f"POST {path} on {self.authority}: {status} {_first_line(body)}")
        return status, _decode(body)

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Host": self.authority}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            conn, reused = self._take()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A pooled connection the proxy closed while idle fails before any answer: retry once.
                if reused and attempt == 0 and isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError):
                    continue
                raise HTTPFailure(502, f"{method} {path} on {self.authority}: {exc!r}") from None
            if response.will_close:
                conn.close()
            else:
                self._give(conn)
            reason = response.getheader("mesh-proxy-error")
            if reason and response.status >= 500:
                raise HTTPFailure(response.status, f"{method} {path} on {self.authority}: {reason}")
            return response.status, data
        raise HTTPFailure(502, f"{method} {path} on {self.authority}: connection lost")  # pragma: no cover

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s), False

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()


def _decode(body: bytes) -> object:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return body.decode("utf-8", "replace")


def _first_line(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else ""


def _json_or_fail(authority: str, method: str, path: str, status: int, body: bytes) -> object:
    if status == 404:
        raise HTTPFailure(404, f"not found: {path}")
    if status >= 400:
        raise HTTPFailure(status if status >= 500 else 502, f"{method} {path} on {authority}: {status}")
    value = _decode(body)
    if isinstance(value, str):
        raise HTTPFailure(502, f"{method} {path} on {authority}: not JSON")
    return value
