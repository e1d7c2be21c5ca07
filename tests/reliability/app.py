"""A tiny HTTP/1.1 app for the reliability tests: every request gets 200 and the pod's name; a path
under /slow is answered after 2 s. With `--fail-pattern .x.x.` the n-th request (from 0) is answered
500 when the pattern's (n mod its length)-th character is "x" (40 %, never twice in a row, here).

    python -m tests.reliability.app --listen 127.N.2.1:7000 --pod books-0 [--fail-pattern .x.x.]

A separate process, so a test can kill -9 it like a real workload.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 2.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pod = "app"
    fail_pattern = ""
    _count = itertools.count()
    _lock = threading.Lock()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/slow"):
            time.sleep(SLOW_S)
        body = f"{self.pod} {self.command} {self.path}\n".encode()
        status = 200
        if self.fail_pattern:
            with self._lock:
                n = next(self._count)
            status = 500 if self.fail_pattern[n % len(self.fail_pattern)] == "x" else 200
        self.send_response(status)
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
    parser.add_argument("--fail-pattern", default="")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.pod = args.pod
    Handler.fail_pattern = args.fail_pattern
    ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses bursts of connects
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
