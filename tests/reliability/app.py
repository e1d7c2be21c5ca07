"""A tiny HTTP/1.1 app for the reliability tests: every request gets 200 and the pod's name; a path
under /slow is answered after 2 s.

    python -m tests.reliability.app --listen 127.N.2.1:7000 --pod books-0

A separate process, so a test can kill -9 it like a real workload.
"""

from __future__ import annotations

import argparse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 2.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pod = "app"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/slow"):
            time.sleep(SLOW_S)
        body = f"{self.pod} {self.command} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--pod", required=True)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.pod = args.pod
    ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses bursts of connects
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
