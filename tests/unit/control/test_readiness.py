"""Endpoint readiness from the endpoint proxies' /ready: the prober's verdicts and the snapshots they make."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from meshctl.control.config import Address, load_control_config
from meshctl.control.readiness import UNSURE_TO_FAIL, ReadinessProber, probe_ready
from meshctl.control.store import MeshStore

BOOKS = "books.booksapp.serviceaccount.identity.meshctl.cluster.local"
PROBE = Address("127.77.2.1", 4191)


def _store(tmp_path: Path, ready: dict[Address, bool]) -> MeshStore:
    endpoints = [
        {"address": "127.77.2.1", "port": 4143, "pod": "books-0", "identity": BOOKS, "probe": str(PROBE)},
        {"address": "127.77.2.2", "port": 4143, "pod": "books-1", "identity": BOOKS},  # no probe: as configured
    ]
    document = {
        "listen": "127.0.0.1:1", "admin": "127.0.0.1:2", "identity_dir": "identity", "config_dir": "config",
        "services": [{"name": "books", "namespace": "booksapp", "port": 7000, "endpoints": endpoints}],
    }  # fmt: skip
    path = tmp_path / "control.json"
    path.write_text(json.dumps(document))
    return MeshStore(path, load_control_config(path), lambda probe: ready.get(probe, False))


def _ready(store: MeshStore) -> dict[str, bool]:
    return {e.pod: e.ready for e in store.snapshot.services[0].endpoints}


def test_probed_endpoint_follows_its_proxy_and_the_version_moves(tmp_path: Path) -> None:
    ready: dict[Address, bool] = {}
    store = _store(tmp_path, ready)
    assert store.probes() == [PROBE]
    assert _ready(store) == {"books-0": False, "books-1": True}  # never answered 200: not routed to
    first = store.version
    ready[PROBE] = True
    store.readiness_changed()
    assert _ready(store) == {"books-0": True, "books-1": True}
    assert store.version == first + 1
    store.readiness_changed()  # nothing changed: no new snapshot
    assert store.version == first + 1


def test_prober_flips_on_refusal_at_once_and_on_silence_only_when_it_repeats() -> None:
    changes: list[bool] = []
    prober = ReadinessProber(lambda: [PROBE], lambda: changes.append(prober.is_ready(PROBE)))
    assert prober._record(PROBE, (True, "200")) and prober.is_ready(PROBE)
    for _ in range(UNSURE_TO_FAIL - 1):
        assert not prober._record(PROBE, (None, "timeout"))  # one slow answer is not a verdict
    assert prober.is_ready(PROBE)
    assert prober._record(PROBE, (None, "timeout")) and not prober.is_ready(PROBE)
    assert prober._record(PROBE, (True, "200")) and prober.is_ready(PROBE)
    assert prober._record(PROBE, (False, "refused")) and not prober.is_ready(PROBE)  # refused / 503: at once


def test_probe_is_ready_on_200_surely_not_on_503_not_ready_or_a_closed_port_unsure_otherwise() -> None:
    answers = {
        "ok": b"200 OK\r\ncontent-length: 6\r\n\r\nready\n",
        "draining": b"503 Service Unavailable\r\ncontent-length: 10\r\n\r\nnot ready\n",
        "full": b"503 Service Unavailable\r\ncontent-length: 27\r\n\r\ntoo many admin connections\n",
    }

    async def scenario() -> list[bool | None]:
        servers, ports = [], {}
        for name, answer in answers.items():

            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes = answer) -> None:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 " + answer)
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            servers.append(server)
            ports[name] = server.sockets[0].getsockname()[1]
        results = [(await probe_ready(Address("127.0.0.1", ports[name])))[0] for name in answers]
        for server in servers:
            server.close()
            await server.wait_closed()
        results.append((await probe_ready(Address("127.0.0.1", ports["ok"])))[0])  # closed now
        return results

    assert asyncio.run(scenario()) == [True, False, None, False]
