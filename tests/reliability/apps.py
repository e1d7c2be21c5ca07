"""Real backends for the reliability tests: an HTTP/1.1 app that records every request it is handed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RecordingApp:
    """A threaded HTTP/1.1 server answering 200 "ok <path>"; `requests` lists each request line it read."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                with app._lock:
                    app.requests.append(self.requestline)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                body = f"ok {self.path}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_CONNECT = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextmanager
def recording_app() -> Iterator[RecordingApp]:
    app = RecordingApp()
    try:
        yield app
    finally:
        app.stop()
