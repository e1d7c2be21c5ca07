"""Real tap servers (the proxy's own hub and h2 server) on one uvloop thread, with traffic driven
through their hubs as the request pipeline drives them, and a mesh.json that points `meshctl tap` at
them (plus instances that are down or silent)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvloop

from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, write_record
from meshctl.proxy.observe.tap import TapHub
from meshctl.proxy.observe.tap_server import TapServer

NS = "booksapp"
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ID = "{}.booksapp.serviceaccount.identity.meshctl.cluster.local"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Fleet:
    def __init__(self, home: Path, live: int = 2, down: int = 0, silent: int = 0) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hubs: dict[str, TapHub] = {}
        self.servers: list[TapServer] = []
        self.addresses: dict[str, str] = {}
        self._silent: list[socket.socket] = []
        for n in range(live):
            pod = f"webapp-{n}"
            hub = TapHub(pod=pod, deployment="webapp", namespace=NS, identity=ID.format("webapp"))
            server = TapServer(hub, notice_s=0.2)
            host, port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), self.loop).result(10)
            self.hubs[pod], self.addresses[pod] = hub, f"{host}:{port}"
            self.servers.append(server)
        for n in range(live, live + down):
            self.addresses[f"webapp-{n}"] = f"127.0.0.1:{closed_port()}"
        for n in range(live + down, live + down + silent):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)  # the kernel accepts; nobody ever speaks HTTP/2
            self._silent.append(listener)
            self.addresses[f"webapp-{n}"] = f"127.0.0.1:{listener.getsockname()[1]}"
        self.home = home
        self._write_record()
        self._stop = threading.Event()
        self._driver: threading.Thread | None = None
        self.sent = 0

    def _write_record(self) -> None:
        components = [
            ComponentRecord(name=pod, kind="workload", namespace=NS, deployment="webapp", pod=pod,
                            addresses={"admin": "127.0.0.1:9", "tap": address}, identity=ID.format("webapp"),
                            service="webapp", service_port=7000)
            for pod, address in self.addresses.items()
        ]  # fmt: skip
        record = MeshRecord(started_at="2026-11-29T06:00:00Z", up_pid=1, home=str(self.home), subnet="127.0.0.0/8",
                            demo=True, state="running", components=components)  # fmt: skip
        layout = Layout(self.home)
        layout.create()
        write_record(layout, record)

    def one_round(self) -> None:
        """On the loop: a GET that succeeds and a POST that fails, through every live hub."""
        for hub in self.hubs.values():
            for method, status in (("GET", 200), ("POST", 500)):
                stream = hub.begin("inbound", "127.0.0.9:40000", "127.0.0.1:7000", ID.format("ingress"), None, True,
                                   method, "webapp.booksapp.svc.cluster.local:7000", "/books", "[DEFAULT]",
                                   [(b"traceparent", TRACEPARENT)])  # fmt: skip
                if stream is not None:
                    stream.response(status, [(b"content-type", b"text/plain")])
                    stream.end(None, None, 0, 12, None)
        self.sent += 1

    def drive(self, every_s: float = 0.02) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.loop.call_soon_threadsafe(self.one_round)
                time.sleep(every_s)

        self._driver = threading.Thread(target=run, daemon=True)
        self._driver.start()

    def stats(self) -> dict[str, tuple[int, int]]:
        """(seen, tapped) per hub: the proxy's own count of what it filtered."""
        result: Any = asyncio.run_coroutine_threadsafe(self._stats(), self.loop).result(10)
        return dict(result)

    async def _stats(self) -> dict[str, tuple[int, int]]:
        return {pod: (hub.seen, hub.tapped) for pod, hub in self.hubs.items()}

    def close(self) -> None:
        self._stop.set()
        if self._driver is not None:
            self._driver.join(timeout=5)
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.stop(), self.loop).result(10)
        for listener in self._silent:
            listener.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()
