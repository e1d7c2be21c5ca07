"""A pod's port on 127.0.0.1, as `kubectl port-forward` gives it: every connection the caller opens to the
local listener becomes one port-forward through the API server (the official client's websocket
`v4.channel.k8s.io` protocol), and bytes are relayed both ways until either side closes.

The kubelet dials the port on localhost inside the pod's network namespace, so the proxy sees a forwarded
connection coming from loopback: its admin endpoint and tap, which refuse anything else, serve it.

One forward per connection keeps connections independent: a long-lived HTTP/2 stream (the tap) and short
HTTP requests (metrics, log level) can share a handle. Threads, not asyncio: the client's port-forward is
a blocking socket pair, and the CLI's callers are synchronous as often as not.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshError
from meshctl.platform.ports import Address, PortHandle

if TYPE_CHECKING:
    from meshctl.platform.kubernetes.api import KubeApi

CHUNK = 256 * 1024
SELECT_TIMEOUT_S = 1.0  # how often a relay looks whether its handle was closed
CLOSE_WAIT_S = 2.0  # how long the client library's thread may take to finish with a closed forward


class ForwardedPort(PortHandle):
    def __init__(self, api: KubeApi, namespace: str, pod: str, port: int) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self._listener: socket.socket | None = None
        self._address: Address | None = None
        self._lock = threading.Lock()
        self._open_sockets: set[Any] = set()
        self._closed = False
        self._failure: str | None = None
        self.connections = 0  # how many connections were forwarded (for tests and --debug)

    @property
    def is_open(self) -> bool:
        return self._listener is not None and not self._closed

    def open(self) -> Address:
        with self._lock:
            if self._closed:
                raise MeshError(f"the forward to {self.namespace}/{self.pod}:{self.port} was closed")
            if self._address is None:
                self._listener = socket.create_server(("127.0.0.1", 0))
                self._address = Address("127.0.0.1", self._listener.getsockname()[1])
                name = f"port-forward {self.namespace}/{self.pod}:{self.port}"
                threading.Thread(target=self._accept, args=(self._listener,), name=name, daemon=True).start()
            return self._address

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listener, self._listener = self._listener, None
            sockets, self._open_sockets = self._open_sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        # Shut down, not close: a relay thread may be in select() on these sockets, and closing a descriptor
        # under it fails that select (EBADF). Shutting down wakes it with end of stream; it closes them.
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def failure(self) -> str | None:
        return self._failure

    # --- relaying ---------------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._track(client):
                client.close()
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), name="port-forward relay", daemon=True).start()

    def _track(self, sock: Any) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._open_sockets.add(sock)
            return True

    def _forget(self, *sockets: Any) -> None:
        with self._lock:
            for sock in sockets:
                self._open_sockets.discard(sock)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self, client: socket.socket) -> None:
        try:
            forward = self.api.portforward(self.namespace, self.pod, self.port)
        except MeshError as exc:
            self._failure = exc.message
            self._forget(client)
            return
        remote = forward.socket(self.port)
        if not self._track(remote):
            self._forget(client, remote)
            return
        try:
            _relay(client, remote, lambda: self._closed)
            # What the API server (kubelet) said on the error channel, e.g. "connection refused": known before
            # the caller sees its connection end, so it can ask `failure()` then.
            error = forward.error(self.port)
            if error:
                self._failure = f"port-forward to {self.namespace}/{self.pod}:{self.port}: {error.strip()}"
        finally:
            self._forget(client, remote)
            # Whichever side ended, the client library shuts its websocket down but never closes it: close it
            # here, once the library's own thread is done with it (it may still be sending on it).
            proxy_thread = getattr(forward, "proxy_thread", None)
            if proxy_thread is not None:
                proxy_thread.join(CLOSE_WAIT_S)
            with contextlib.suppress(Exception):
                forward.websocket.shutdown()


def _relay(client: socket.socket, remote: Any, closed: Callable[[], bool]) -> Any:
    """Copy bytes both ways until one side closes, and return that side (None: the handle was closed).
    The port-forward protocol has no half-close, so the first end of stream ends the connection (as
    `kubectl port-forward` does)."""
    ends = (client, remote)
    while not closed():
        try:
            readable, _, _ = select.select(ends, [], [], SELECT_TIMEOUT_S)
        except (OSError, ValueError):  # a side was closed under us (ValueError: its descriptor is already -1)
            return None
        for source in readable:
            target = remote if source is client else client
            try:
                data = source.recv(CHUNK)
            except OSError:
                return source
            if not data:
                return source
            try:
                target.sendall(data)
            except OSError:
                return target
    return None
