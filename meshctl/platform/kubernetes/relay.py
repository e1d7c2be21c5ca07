"""A loopback relay to a component's HTTP endpoint through the API server's service proxy, as
`kubectl proxy` does: GET http://127.0.0.1:<port>/x reaches http://<service>:<port>/x inside the cluster.

The shared checks and commands speak plain HTTP to "host:port" (Prometheus' API, the control plane's admin
server); the relay lets them do so on Kubernetes with the kubeconfig's credentials, without a port-forward.
It serves in a daemon thread for the life of the CLI process and answers only on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meshctl.errors import UnreachableError
from meshctl.platform.kubernetes.api import KubeApi, KubeError, quote

RELAY_TIMEOUT_S = 5.0


def service_proxy_path(namespace: str, service: str, port: int) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/services/{quote(service)}:{port}/proxy"


class Relay:
    def __init__(self, api: KubeApi, base_path: str) -> None:
        self.api = api
        self.base_path = base_path
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without NODELAY, Nagle and delayed ACKs add 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
                status, body = relay.fetch(parts.path, query)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
                pass  # the CLI's stderr is for the user

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-relay", daemon=True)
        self._thread.start()

    def fetch(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        try:
            return 200, self.api.raw(self.base_path + path, query, timeout_s=RELAY_TIMEOUT_S)
        except KubeError as exc:
            return exc.status, exc.message.encode()
        except UnreachableError as exc:
            return 502, exc.message.encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
