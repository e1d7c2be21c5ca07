"""A headless tap client that only counts: how many events of each kind one proxy delivered, and the drops
its notices reported.

    python -m bench.tap_counter --address 127.0.0.1:4190 [--client raw|fanin] [--max-seconds 900]

One Observe call matching every request, with a limit far above any offered rate (so `rate_limited`
stays 0 and only the proxy's queue can lose events). Every 0.2 s it prints one JSON line of cumulative
counts to stdout; the first line says the stream is live. `raw` (default) is a minimal grpcio client of
the tap contract: messages stay bytes and are told apart by their first byte (the oneof's field key),
only drop notices are parsed. grpcio still costs about 0.1 ms of CPU per message, so `h2` speaks the
same contract over a bare socket with python-h2 (many messages per DATA frame, sliced off in a loop):
with it the proxy, not the client, is what limits delivery. `fanin` runs the CLI's own headless client
(meshctl.tapping.client.FanIn: one thread per stream, each event decoded to a value).
It ends on SIGTERM/SIGINT, when the stream ends, or after --max-seconds.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any

from meshctl.api import tap_pb2

OBSERVE = "/meshctl.tap.v1.Tap/Observe"
CLIENTS = ("raw", "h2", "fanin")
NO_LIMIT = 4_000_000_000  # requests/s (uint32): the benchmark measures the queue, not the rate limit
# A TapEvent's first byte is the key of its oneof field: (field number << 3) | 2 (length-delimited).
KINDS = {1: "request_init", 2: "response_init", 3: "response_end", 4: "body", 5: "dropped"}


@dataclass
class Counts:
    request_init: int = 0
    response_init: int = 0
    response_end: int = 0
    body: int = 0
    dropped: int = 0  # drop notices received
    other: int = 0
    queue_full: int = 0  # requests the proxy reported lost (its queue for us was full)
    rate_limited: int = 0  # requests over our limit

    @property
    def events(self) -> int:
        """Request events received (notices are not events of a request)."""
        return self.request_init + self.response_init + self.response_end + self.body

    def add_raw(self, message: bytes) -> None:
        """Count one serialized TapEvent."""
        kind = KINDS.get(message[0] >> 3) if message and message[0] & 7 == 2 else None
        if kind is None:
            self.other += 1
        elif kind == "dropped":
            self.add_drop(tap_pb2.TapEvent.FromString(message).dropped)
        else:
            setattr(self, kind, getattr(self, kind) + 1)

    def add_drop(self, dropped: Any) -> None:
        self.dropped += 1
        self.queue_full += int(dropped.queue_full)
        self.rate_limited += int(dropped.rate_limited)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "events": self.events}


def split_messages(buffer: bytearray) -> list[bytes]:
    """Take every whole gRPC length-prefixed message off the front of `buffer` (the rest stays)."""
    out: list[bytes] = []
    at, end = 0, len(buffer)
    while end - at >= 5:
        size = int.from_bytes(buffer[at + 1 : at + 5], "big")
        if end - at - 5 < size:
            break
        out.append(bytes(buffer[at + 5 : at + 5 + size]))
        at += 5 + size
    del buffer[:at]
    return out


def observe_request() -> tap_pb2.ObserveRequest:
    """Every request (an unset match), no body capture, no practical rate limit."""
    return tap_pb2.ObserveRequest(limit=NO_LIMIT)


class Counter:
    def __init__(self, address: str, client: str) -> None:
        self.address = address
        self.client = client
        self.counts = Counts()
        self.state = "connecting"
        self.reason = ""
        self.done = threading.Event()
        self.stopping = False
        self._cancel: list[Any] = []

    def run_raw(self) -> None:
        import grpc

        channel = grpc.insecure_channel(self.address, options=[("grpc.enable_http_proxy", 0)])
        try:
            grpc.channel_ready_future(channel).result(timeout=5)
            call: Any = channel.unary_stream(OBSERVE, request_serializer=tap_pb2.ObserveRequest.SerializeToString,
                                             response_deserializer=None)(observe_request())  # fmt: skip
            self._cancel.append(call.cancel)
            call.initial_metadata()
            self.state = "streaming"
            add = self.counts.add_raw
            for message in call:
                add(message)
            self.state, self.reason = "ended", "the proxy ended the stream"
        except grpc.RpcError as exc:
            if self.stopping:
                self.state = "stopped"
            else:
                self.state, self.reason = "failed", f"{exc.code().name}: {exc.details()}"
        except grpc.FutureTimeoutError:
            self.state, self.reason = "failed", f"{self.address} did not answer as a gRPC server within 5 s"
        finally:
            channel.close()
            self.done.set()

    def run_h2(self) -> None:
        """The tap contract over a bare socket and python-h2 (sans-IO): no grpcio, so the client's cost per
        event is a slice and a dict look-up, and what limits delivery is the proxy, not the client."""
        import socket

        from h2.config import H2Configuration
        from h2.connection import H2Connection
        from h2.events import ConnectionTerminated, DataReceived, ResponseReceived, StreamEnded, StreamReset

        host, _, port = self.address.rpartition(":")
        h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        buffer = bytearray()
        try:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.settimeout(0.2)  # so a stop is seen within 0.2 s
                h2.initiate_connection()
                h2.update_settings({0x4: 16 * 1024 * 1024})  # SETTINGS_INITIAL_WINDOW_SIZE: few WINDOW_UPDATEs
                h2.increment_flow_control_window(64 * 1024 * 1024)
                body = observe_request().SerializeToString()
                h2.send_headers(1, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", OBSERVE.encode()),
                                    (b":authority", self.address.encode()), (b"content-type", b"application/grpc"),
                                    (b"te", b"trailers")])  # fmt: skip
                h2.send_data(1, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
                sock.sendall(h2.data_to_send())
                add = self.counts.add_raw
                while not self.done.is_set():
                    try:
                        data = sock.recv(1 << 20)
                    except TimeoutError:
                        continue
                    if not data:
                        self.state, self.reason = "ended", "the proxy closed the connection"
                        return
                    for event in h2.receive_data(data):
                        if isinstance(event, DataReceived):
                            h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                            buffer += event.data
                            for message in split_messages(buffer):
                                add(message)
                        elif isinstance(event, ResponseReceived):
                            self.state = "streaming"
                        elif isinstance(event, StreamEnded | StreamReset | ConnectionTerminated):
                            self.state, self.reason = "ended", f"the proxy ended the stream ({type(event).__name__})"
                            return
                    sock.sendall(h2.data_to_send())
                self.state = "stopped"
        except OSError as exc:
            self.state, self.reason = "failed", f"{self.address}: {exc.strerror or exc}"
        finally:
            self.done.set()

    def run_fanin(self) -> None:
        from meshctl.tapping.client import FanIn, StateChange, TapTarget
        from meshctl.tapping.events import BodyChunk, Dropped, RequestInit, ResponseEnd, ResponseInit

        fan = FanIn([TapTarget("proxy", self.address)], observe_request())
        self._cancel.append(fan.stop)
        fan.start()
        c = self.counts
        try:
            while not self.done.is_set():
                item = fan.get(0.2)
                if item is None:
                    continue
                if isinstance(item, StateChange):
                    self.state, self.reason = item.state, item.reason
                    if item.state != "streaming":
                        if self.stopping:
                            self.state = "stopped"
                        return
                elif isinstance(item, RequestInit):
                    c.request_init += 1
                elif isinstance(item, ResponseInit):
                    c.response_init += 1
                elif isinstance(item, ResponseEnd):
                    c.response_end += 1
                elif isinstance(item, BodyChunk):
                    c.body += 1
                elif isinstance(item, Dropped):
                    c.add_drop(item)
                else:
                    c.other += 1
        finally:
            self.done.set()

    def stop(self) -> None:
        self.stopping = True
        self.done.set()
        for cancel in self._cancel:
            cancel()

    def line(self) -> str:
        return json.dumps({"t": time.monotonic(), "state": self.state, "reason": self.reason,
                           **self.counts.as_dict()})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tap_counter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="the proxy's tap listener, host:port")
    parser.add_argument("--client", choices=CLIENTS, default="raw", help="which client counts")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="end after this long whatever happens")
    args = parser.parse_args(argv)
    counter = Counter(args.address, args.client)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        counter.done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    target = {"raw": counter.run_raw, "h2": counter.run_h2, "fanin": counter.run_fanin}[args.client]
    thread = threading.Thread(target=target, name="tap", daemon=True)
    thread.start()
    deadline = time.monotonic() + args.max_seconds
    while not counter.done.wait(0.2) and time.monotonic() < deadline:
        print(counter.line(), flush=True)
    counter.stop()
    thread.join(timeout=2)
    print(counter.line(), flush=True)
    return 0 if counter.state in ("streaming", "ended", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
