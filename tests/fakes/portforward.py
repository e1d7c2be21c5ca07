"""The API server's side of a pod port-forward over a websocket, as kube-apiserver and the kubelet speak it.

`GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=N[,M]` with `Upgrade: websocket` and the
subprotocol `v4.channel.k8s.io`: for the i-th port, channel 2i carries data both ways and channel 2i+1
carries errors from the server. The server's first frame on each channel is the channel byte followed by
the port number (2 bytes, little endian); every later frame is the channel byte followed by data. The
kubelet dials the port on localhost inside the pod's network namespace; here a real local TCP address
stands in for the pod, so the process listening there sees a loopback peer, as it would in the pod.
When the pod's side ends, the server closes the websocket with a close frame (status 1000).

The framing (RFC 6455) is written out here, small and independent of the client library under test:
client frames are masked, server frames are not; ping is answered with pong; fragments are joined.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Callable
from io import BufferedIOBase

V4_PROTOCOL = "v4.channel.k8s.io"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame (what a server sends)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


def _exactly(stream: BufferedIOBase, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("the websocket ended in the middle of a frame")
    return data


def read_frame(stream: BufferedIOBase) -> tuple[bool, int, bytes]:
    """(final, opcode, payload) of the next frame, unmasked."""
    first, second = _exactly(stream, 2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", _exactly(stream, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", _exactly(stream, 8))
    mask = _exactly(stream, 4) if second & 0x80 else b""
    payload = _exactly(stream, size)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(first & 0x80), first & 0x0F, payload


def read_message(stream: BufferedIOBase, write: Callable[[bytes], None]) -> tuple[int, bytes]:
    """The next data or close message, joined from its fragments; pings are answered on the way."""
    opcode, parts = None, []
    while True:
        final, op, payload = read_frame(stream)
        if op == OP_PING:
            write(frame(OP_PONG, payload))
            continue
        if op in (OP_PONG,):
            continue
        if op == OP_CLOSE:
            return OP_CLOSE, payload
        opcode = op if op != OP_CONTINUATION else opcode
        parts.append(payload)
        if final:
            return opcode or OP_BINARY, b"".join(parts)


class PortForwardSession:
    """One upgraded connection: relays each requested port's data channel to a local address."""

    def __init__(
        self,
        rfile: BufferedIOBase,
        sock: socket.socket,
        ports: list[int],
        targets: list[tuple[str, int] | None],
        pod: str,
    ) -> None:
        self.rfile = rfile
        self.sock = sock
        self.ports = ports
        self.targets = targets
        self.pod = pod
        self._send_lock = threading.Lock()
        self._upstreams: dict[int, socket.socket] = {}
        self._closing = False  # the server sent its close frame: the client's answer ends the session

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def channel(self, number: int, payload: bytes) -> None:
        self.send(frame(OP_BINARY, bytes([number]) + payload))

    def run(self) -> None:
        for index, port in enumerate(self.ports):
            prefix = struct.pack("<H", port)
            self.channel(2 * index, prefix)
            self.channel(2 * index + 1, prefix)
        readers: list[threading.Thread] = []
        for index, (port, target) in enumerate(zip(self.ports, self.targets, strict=True)):
            try:
                if target is None:
                    raise ConnectionRefusedError("connection refused")
                upstream = socket.create_connection(target, timeout=5.0)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                upstream.settimeout(None)
            except OSError as exc:
                reason = exc.strerror or str(exc) or "connection refused"
                message = (
                    f"error forwarding port {port} to pod {self.pod}, uid : failed to connect to localhost:{port}"
                    f" inside namespace: {reason.lower()}"
                )
                self.channel(2 * index + 1, message.encode())
                continue
            self._upstreams[index] = upstream
            reader = threading.Thread(target=self._from_pod, args=(index, upstream), daemon=True)
            reader.start()
            readers.append(reader)
        if not self._upstreams:
            self._close()
            return
        self._from_client()

    def _from_pod(self, index: int, upstream: socket.socket) -> None:
        while True:
            try:
                data = upstream.recv(64 * 1024)
            except OSError:
                data = b""
            if not data:
                # As the kubelet: when the pod's side ends, so does the stream (there is no half-close).
                self._close()
                return
            try:
                self.channel(2 * index, data)
            except OSError:
                return

    def _from_client(self) -> None:
        while True:
            try:
                opcode, payload = read_message(self.rfile, self.send)
            except (EOFError, OSError, ValueError):
                break
            if opcode == OP_CLOSE:
                if not self._closing:  # the client closes first: answer its close frame
                    with contextlib.suppress(OSError):
                        self.send(frame(OP_CLOSE, payload[:2] or struct.pack("!H", 1000)))
                break
            if not payload:
                continue
            upstream = self._upstreams.get(payload[0] // 2) if payload[0] % 2 == 0 else None
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.sendall(payload[1:])
        for upstream in self._upstreams.values():
            with contextlib.suppress(OSError):
                upstream.close()

    def _close(self) -> None:
        with self._send_lock:
            if self._closing:
                return
            self._closing = True
        with contextlib.suppress(OSError):
            self.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        for upstream in self._upstreams.values():
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
