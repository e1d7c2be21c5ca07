"""From decoded packets to what `meshctl debug` shows: which instance, which leg, request or response.

A leg is a plaintext hop of one instance, named by the address of its server side: the inbound leg is the
proxy talking to the app (the app's address), the outbound leg the app talking to its proxy (the proxy's
outbound address). A packet to that address is a request, one from it a response.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import TypeVar

from meshctl.debug.tshark import Packet

MAX_PENDING = 10_000  # requests remembered for their responses (old ones are forgotten first)
K = TypeVar("K")


def _remember(table: OrderedDict[K, tuple[str, str]], key: K, value: tuple[str, str]) -> None:
    table[key] = value
    while len(table) > MAX_PENDING:
        table.popitem(last=False)


@dataclass(frozen=True)
class Leg:
    instance: str
    host: str
    port: int
    direction: str  # "inbound" (proxy → app) | "outbound" (app → proxy)
    protocol: str = "http"  # "http" | "grpc" (HTTP/2)


@dataclass(frozen=True)
class HttpEvent:
    time: float
    instance: str
    direction: str
    kind: str  # "request" | "response"
    method: str
    path: str
    status: int | None = None
    src: str = ""  # "host:port" of the packet's sender
    dst: str = ""

    def document(self) -> dict[str, object]:
        return asdict(self)


class Correlator:
    """Turns packets into events, giving each response the method and path of its request."""

    def __init__(self, legs: list[Leg]) -> None:
        self.legs = {(leg.host, leg.port): leg for leg in legs}
        self._h1: OrderedDict[int, tuple[str, str]] = OrderedDict()  # request frame -> method, path
        self._h2: OrderedDict[tuple[int, str], tuple[str, str]] = OrderedDict()  # (tcp stream, h2 stream)

    def events(self, packet: Packet) -> list[HttpEvent]:
        to_server, leg = True, self.legs.get(packet.dst)
        if leg is None:
            to_server, leg = False, self.legs.get(packet.src)
        if leg is None:
            return []
        if packet.method or packet.status:
            return self._h1_events(packet, leg, to_server)
        return self._h2_events(packet, leg)

    def _h1_events(self, packet: Packet, leg: Leg, to_server: bool) -> list[HttpEvent]:
        src, dst = _ends(packet)
        if packet.method and to_server:
            _remember(self._h1, packet.frame, (packet.method, packet.uri))
            return [
                HttpEvent(
                    packet.time, leg.instance, leg.direction, "request", packet.method, packet.uri, src=src, dst=dst
                )
            ]
        if packet.status and not to_server:
            method, path = self._h1.pop(packet.request_in, ("", "")) if packet.request_in else ("", "")
            status = int(packet.status)
            return [
                HttpEvent(packet.time, leg.instance, leg.direction, "response", method, path, status, src=src, dst=dst)
            ]
        return []

    def _h2_events(self, packet: Packet, leg: Leg) -> list[HttpEvent]:
        found: list[HttpEvent] = []
        src, dst = _ends(packet)
        methods, paths, statuses = list(packet.h2_methods), list(packet.h2_paths), list(packet.h2_statuses)
        # Streams that carry headers, in frame order: a request's (method + path) or a response's (status).
        for stream_id in dict.fromkeys(s for s in packet.h2_streams if s != "0"):  # 0: the connection's
            key = (packet.stream, stream_id)
            if methods and paths and key not in self._h2:
                method, path = methods.pop(0), paths.pop(0)
                _remember(self._h2, key, (method, path))
                found.append(
                    HttpEvent(packet.time, leg.instance, leg.direction, "request", method, path, src=src, dst=dst)
                )
            elif statuses and key in self._h2:
                method, path = self._h2.pop(key)
                status = int(statuses.pop(0))
                found.append(
                    HttpEvent(
                        packet.time, leg.instance, leg.direction, "response", method, path, status, src=src, dst=dst
                    )
                )
        return found


def _ends(packet: Packet) -> tuple[str, str]:
    return f"{packet.src[0]}:{packet.src[1]}", f"{packet.dst[0]}:{packet.dst[1]}"
