"""The proxy injector's HTTPS endpoint: POST /inject with an AdmissionReview (meshctl.inject.webhook).

A small stdlib server on its own threads, apart from the gRPC loop: the TLS handshake and the request
happen on a worker thread (at most MAX_CONNECTIONS at once, each with a socket timeout), so a slow or
hostile client holds one worker, never the listener. The certificate files are re-read when they change
(a Secret mounted in the pod is updated in place), without a restart.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from meshctl import __version__
from meshctl.errors import ConfigError, ConflictError
from meshctl.inject.webhook import MAX_BODY_BYTES, ReviewError, review
from meshctl.platform.kubernetes import conventions as k8s

log = logging.getLogger("meshctl.control.webhook")

MAX_CONNECTIONS = 32
SOCKET_TIMEOUT_S = 10.0


class _Certificate:
    """The TLS context of cert + key files, rebuilt when either file changes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self.context = self._load()

    def _stat(self) -> tuple[float, float]:
        try:
            return (os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime)
        except OSError as exc:
            raise ConfigError(
                f"webhook: cannot read {exc.filename}: {exc.strerror}", hint="fix webhook.cert / webhook.key"
            ) from None

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"webhook: cannot load the certificate {self.cert} with key {self.key}: {exc}",
                hint="give webhook.cert a PEM chain and webhook.key its PEM private key",
            ) from None
        return context

    def current(self) -> ssl.SSLContext:
        with self._lock:
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self.context, self._stamp = self._load(), stamp
                    log.info("webhook certificate reloaded from %s", self.cert)
            except ConfigError as exc:
                log.error("%s; keeping the previous certificate", exc.message)
            return self.context


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != k8s.INJECTOR_PATH:
            self._reply(HTTPStatus.NOT_FOUND, f"no such path; the injector answers POST {k8s.INJECTOR_PATH}")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            return
        if int(length) > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes")
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            self.close_connection = True
            return  # the client went away mid-body: nobody to answer
        try:
            answer = review(body, self.server.version)
        except ReviewError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except Exception:  # a bug must cost one answer, never the server
            log.exception("injector failed on a review")
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, "the injector failed; see the control plane's log")
            return
        self._reply(HTTPStatus.OK, answer)

    def do_GET(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, f"the injector answers POST {k8s.INJECTOR_PATH}")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _reply(self, status: HTTPStatus, content: dict[str, Any] | str) -> None:
        if isinstance(content, str):
            data, kind = (content + "\n").encode(), "text/plain; charset=utf-8"
            self.close_connection = status != HTTPStatus.OK
        else:
            data, kind = json.dumps(content).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if status >= 400:
            log.info("injector: %d %s", status, content)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib names it `format`
        log.debug("%s %s", self.address_string(), format % args)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, cert: Path, key: Path, version: str = __version__) -> None:
        self.certificate = _Certificate(cert, key)
        self.version = version
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._thread: threading.Thread | None = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise ConflictError(
                f"the injector cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="free the port or change webhook.listen in the control plane's config",
            ) from None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("injector: too many connections, refusing %s", client_address[0])
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake, on this worker thread, then HTTP over it."""
        request.settimeout(SOCKET_TIMEOUT_S)
        try:
            tls = self.certificate.current().wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("injector: TLS handshake with %s failed: %s", client_address[0], exc)
            return
        try:
            _Handler(tls, client_address, self)
        except OSError as exc:  # timeouts and resets: that client's problem only
            log.debug("injector: connection from %s ended: %s", client_address[0], exc)
        finally:
            tls.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="injector-webhook", daemon=True)
        self._thread.start()
        log.info("proxy injector serving https://%s:%d%s", self.server_address[0], self.port, k8s.INJECTOR_PATH)

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
