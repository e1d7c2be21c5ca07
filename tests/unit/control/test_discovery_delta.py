"""Discovery deltas: the store's delta per change, chains for watchers that fell behind, the proxy's merge.

Every merged snapshot is compared with the store's complete snapshot of the same version: equal
field for field and in order, which is what "never a wrong state" means for a proxy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from meshctl.control import store as store_module
from meshctl.control.config import load_control_config
from meshctl.control.store import MeshStore
from meshctl.discovery_delta import DeltaError, apply_delta, resource_key, service_key
from meshctl.proxy.control_client import ControlClient

NS = "booksapp"
PROFILE = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {{name: {name}.booksapp.svc.cluster.local}}
spec:
  routes:
  - name: {route}
    condition: {{method: GET, pathRegex: /books}}
"""


def _identity(service: str) -> str:
    return f"{service}.{NS}.serviceaccount.identity.meshctl.cluster.local"


class Mesh:
    """control.json and the resource directory of a store under test, rewritten by the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "control.json"
        self.services: dict[str, list[tuple[str, bool]]] = {}  # name -> [(address, ready)]
        (root / "config").mkdir()

    def write(self) -> None:
        services = [
            {"name": name, "namespace": NS, "port": 7000, "endpoints": [
                {"address": address, "port": 4143, "pod": f"{name}-{i}", "identity": _identity(name), "ready": ready}
                for i, (address, ready) in enumerate(endpoints)]}
            for name, endpoints in self.services.items()
        ]  # fmt: skip
        document = {"listen": "127.0.0.1:1", "admin": "127.0.0.1:2", "identity_dir": "identity",
                    "config_dir": "config", "services": services}  # fmt: skip
        self.path.write_text(json.dumps(document))

    def profile(self, name: str, route: str | None) -> None:
        path = self.root / "config" / f"{name}.yaml"
        if route is None:
            path.unlink()
        else:
            path.write_text(PROFILE.format(name=name, route=route))

    def store(self) -> MeshStore:
        self.write()
        return MeshStore(self.path, load_control_config(self.path))


@pytest.fixture
def mesh(tmp_path: Path) -> Mesh:
    mesh = Mesh(tmp_path)
    mesh.services = {"books": [("127.77.2.1", True), ("127.77.2.2", True)], "authors": [("127.77.3.1", True)]}
    for i in range(6):  # more of the mesh than a change touches, as in a real one
        mesh.services[f"shelf-{i}"] = [(f"127.77.5.{i + 1}", True)]
    return mesh


def _change(store: MeshStore) -> mesh_pb2.Snapshot:
    """Refresh the store, which must have changed, and return the delta it made for the new version."""
    before = store.version
    assert store.refresh() is True and store.version == before + 1
    (wire,) = store.deltas_since(before)
    delta = mesh_pb2.Snapshot.FromString(wire)
    assert (delta.delta, delta.version, delta.base_version) == (True, store.version, before)
    return delta


def _names(delta: mesh_pb2.Snapshot) -> dict[str, Any]:
    return {"services": [service_key(s) for s in delta.services],
            "resources": [resource_key(r) for r in delta.resources],
            "removed_services": list(delta.removed_services),
            "removed_resources": list(delta.removed_resources)}  # fmt: skip


def test_each_kind_of_change_is_a_delta_of_just_that_entry_and_merges_to_the_whole_snapshot(mesh: Mesh) -> None:
    store = mesh.store()
    held = store.snapshot
    books, authors, ratings = f"{NS}/books:7000", f"{NS}/authors:7000", f"{NS}/ratings:7000"
    profile = f"ServiceProfile/{NS}/books.booksapp.svc.cluster.local"
    steps: list[tuple[Any, dict[str, Any]]] = [
        (lambda: mesh.services["books"].__setitem__(1, ("127.77.2.2", False)), {"services": [books]}),
        (lambda: mesh.services.__setitem__("ratings", [("127.77.4.1", True)]), {"services": [ratings]}),
        (lambda: mesh.services.pop("authors"), {"removed_services": [authors]}),
        (lambda: mesh.profile("books", "list"), {"resources": [profile]}),
        (lambda: mesh.profile("books", "search"), {"resources": [profile]}),
        (lambda: mesh.profile("books", None), {"removed_resources": [profile]}),
    ]
    empty: dict[str, Any] = {"services": [], "resources": [], "removed_services": [], "removed_resources": []}
    for edit, expected in steps:
        edit()
        mesh.write()
        delta = _change(store)
        assert _names(delta) == {**empty, **expected}
        held = apply_delta(held, delta)
        assert held == store.snapshot
        assert not held.delta and held.SerializeToString(deterministic=True) == store.snapshot_wire
    assert [s.name for s in held.services][:2] == ["books", "ratings"] and list(held.resources) == []


def test_a_watcher_that_skipped_versions_gets_the_chain_it_missed(mesh: Mesh) -> None:
    store = mesh.store()
    held = store.snapshot
    for i in range(3):
        mesh.services["books"][0] = (f"127.77.2.{10 + i}", True)
        mesh.write()
        store.refresh()
    chain = store.deltas_since(held.version)
    assert len(chain) == 3
    for wire in chain:
        held = apply_delta(held, mesh_pb2.Snapshot.FromString(wire))
    assert held == store.snapshot
    assert store.deltas_since(store.version) == []


def test_a_watcher_further_behind_than_the_kept_deltas_gets_the_whole_snapshot(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "DELTAS_KEPT", 2)
    store = mesh.store()
    start = store.version
    for i in range(3):
        mesh.services["books"][0] = (f"127.77.2.{10 + i}", True)
        mesh.write()
        store.refresh()
    assert store.deltas_since(start) == []  # three deltas missed, two kept
    assert len(store.deltas_since(start + 1)) == 2


def test_a_chain_larger_than_the_snapshot_is_replaced_by_the_snapshot(mesh: Mesh) -> None:
    store = mesh.store()
    start = store.version
    for i in range(12):  # every change rewrites books, the largest service: twelve of it outweigh the mesh
        mesh.services["books"][0] = ("127.77.2.1", i % 2 == 0)
        mesh.write()
        store.refresh()
    assert 12 * len(mesh_pb2.Snapshot(services=store.snapshot.services[:1]).SerializeToString()) > len(
        store.snapshot_wire
    )
    assert store.deltas_since(start) == []
    assert len(store.deltas_since(store.version - 1)) == 1


def test_entries_that_share_a_key_break_the_chain(mesh: Mesh) -> None:
    store = mesh.store()
    start = store.version
    document = json.loads(mesh.path.read_text())
    document["services"].append(document["services"][0])  # the same service twice: no key tells them apart
    mesh.path.write_text(json.dumps(document))
    assert store.refresh() is True
    assert store.deltas_since(start) == []
    mesh.write()
    assert store.refresh() is True
    assert store.deltas_since(store.version - 1) == []  # from the duplicated version: no delta either


def test_a_delta_for_another_base_is_refused() -> None:
    base = mesh_pb2.Snapshot(version=7, services=[mesh_pb2.Service(name="a", namespace=NS, port=1)])
    delta = mesh_pb2.Snapshot(version=9, delta=True, base_version=8, removed_services=[f"{NS}/a:1"])
    with pytest.raises(DeltaError, match="from version 8 arrived, but the proxy has version 7"):
        apply_delta(base, delta)
    with pytest.raises(DeltaError, match="has no snapshot"):
        apply_delta(None, delta)


class _Config:
    pod, namespace, identity, trust_anchors, token_file, control = "p", NS, "i", "a", "t", None


def test_the_control_client_merges_deltas_and_keeps_its_snapshot_when_one_does_not_fit(mesh: Mesh) -> None:
    store = mesh.store()
    delivered: list[mesh_pb2.Snapshot] = []
    client = ControlClient(_Config(), lambda _: None, delivered.append)  # type: ignore[arg-type]
    first = store.snapshot
    client._received(mesh_pb2.Snapshot.FromString(store.snapshot_wire))
    mesh.services["books"][0] = ("127.77.2.9", True)
    mesh.write()
    delta = _change(store)
    client._received(delta)
    assert delivered == [first, store.snapshot] and client.snapshot == store.snapshot
    assert not delivered[-1].delta
    held = client.snapshot
    with pytest.raises(DeltaError):
        client._received(delta)  # the same delta again: its base is no longer the held version
    assert client.snapshot is held and len(delivered) == 2
