"""Fan-in: one Observe stream per proxy instance, each on its own thread, into one queue.

grpcio is imported here, when a stream starts, never by `meshctl --help`. An instance that cannot be
tapped is reported as soon as that is known — within `connect_timeout` (1 s) of the start — with the
reason (no tap port, connection refused, not a tap server, refused by the proxy), while the others go
on streaming.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshctl.tapping.events import TapEvent, from_proto

if TYPE_CHECKING:
    from meshctl.api import tap_pb2

CONNECT_TIMEOUT_S = 0.9  # connect and HTTP/2 handshake together: a failure is known within 1 s


@dataclass(frozen=True)
class TapTarget:
    """One proxy to tap: its address, or why it has none."""

    instance: str
    address: str | None
    problem: str = ""


@dataclass(frozen=True)
class StateChange:
    """A stream's state: streaming, failed (with the reason) or ended."""

    instance: str
    state: str
    reason: str = ""


Item = TapEvent | StateChange


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _rpc_reason(error: Any) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name if code is not None else "UNKNOWN"
    return f"{details} ({name})" if details else name


class FanIn:
    def __init__(self, targets: Sequence[TapTarget], request: tap_pb2.ObserveRequest, *,
                 connect_timeout: float = CONNECT_TIMEOUT_S, max_queue: int = 100_000) -> None:  # fmt: skip
        self.targets = list(targets)
        self.request = request
        self.connect_timeout = connect_timeout
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=max_queue)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._calls: list[Any] = []
        self._channels: list[Any] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target in self.targets:
            thread = threading.Thread(target=self._run, args=(target,), name=f"tap {target.instance}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def get(self, timeout: float) -> Item | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self, timeout: float = 2.0) -> None:
        """Cancel every stream and wait (bounded) for the threads."""
        self._stopping.set()
        with self._lock:
            calls, channels = list(self._calls), list(self._channels)
        for call in calls:
            call.cancel()
        for channel in channels:
            channel.close()
        for thread in self._threads:
            thread.join(timeout=timeout / max(1, len(self._threads)))

    def _put(self, item: Item) -> None:
        # The reader is this process's own output loop; when it falls this far behind, wait for it
        # (the proxy then counts what it cannot send us), but never past a stop.
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _run(self, target: TapTarget) -> None:
        try:
            self._stream(target)
        except Exception as exc:  # a thread must report, never die silently
            self._put(StateChange(target.instance, "failed", f"{type(exc).__name__}: {exc}"))

    def _stream(self, target: TapTarget) -> None:
        if target.address is None:
            self._put(StateChange(target.instance, "failed", target.problem or "no tap address"))
            return
        host, port = _split(target.address)
        deadline = time.monotonic() + self.connect_timeout
        try:
            with socket.create_connection((host, port), timeout=self.connect_timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._put(StateChange(target.instance, "failed", f"cannot connect to {target.address}: {reason}"))
            return
        import grpc

        from meshctl.api import tap_pb2_grpc

        channel = grpc.insecure_channel(target.address, options=[("grpc.enable_http_proxy", 0)])
        with self._lock:
            self._channels.append(channel)
        try:
            grpc.channel_ready_future(channel).result(timeout=max(0.05, deadline - time.monotonic()))
        except grpc.FutureTimeoutError:
            reason = f"{target.address} accepts connections but does not answer as a tap server"
            self._put(StateChange(target.instance, "failed", reason))
            channel.close()
            return
        call: Any = tap_pb2_grpc.TapStub(channel).Observe(self.request)
        with self._lock:
            self._calls.append(call)
        if self._stopping.is_set():
            call.cancel()
        try:
            call.initial_metadata()  # the proxy answered the subscription: live, even if nothing matches yet
            if not call.done():  # a refusal arrives as a finished call: reported below instead
                self._put(StateChange(target.instance, "streaming"))
            for message in call:
                event = from_proto(target.instance, message)
                if event is not None:
                    self._put(event)
            self._put(StateChange(target.instance, "ended", "the proxy ended the stream"))
        except grpc.RpcError as error:
            if self._stopping.is_set():
                self._put(StateChange(target.instance, "ended", "stopped"))
            else:
                self._put(StateChange(target.instance, "failed", _rpc_reason(error)))
        finally:
            channel.close()
