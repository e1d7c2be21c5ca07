"""MeshStore: snapshots from control.json and resource files; an invalid file keeps its last good content."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from meshctl.control.config import load_control_config
from meshctl.control.store import MeshStore

BOOKS = "books.booksapp.serviceaccount.identity.meshctl.cluster.local"
PROFILE = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {{name: books.booksapp.svc.cluster.local}}
spec:
  routes:
  - name: {route}
    condition: {{method: GET, pathRegex: /books}}
"""


def _control(tmp_path: Path, endpoints: int = 1) -> Path:
    path = tmp_path / "control.json"
    document = {
        "listen": "127.0.0.1:1",
        "admin": "127.0.0.1:2",
        "identity_dir": "identity",
        "config_dir": "config",
        "services": [
            {
                "name": "books",
                "namespace": "booksapp",
                "port": 7000,
                "endpoints": [
                    {"address": f"127.77.2.{i + 1}", "port": 4143, "pod": f"books-{i}", "identity": BOOKS}
                    for i in range(endpoints)
                ],
            }
        ],
    }
    path.write_text(json.dumps(document))
    (tmp_path / "config").mkdir(exist_ok=True)
    return path


def _store(tmp_path: Path) -> MeshStore:
    path = _control(tmp_path)
    return MeshStore(path, load_control_config(path))


def _routes(store: MeshStore) -> list[str]:
    return [route["name"] for r in store.snapshot.resources for route in json.loads(r.spec_json)["routes"]]


def test_first_snapshot_has_services_and_resources(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "books.yaml").write_text(PROFILE.format(route="list"))
    store = _store(tmp_path)
    snapshot = store.snapshot
    assert [(s.name, s.namespace, s.port, s.protocol) for s in snapshot.services] == [
        ("books", "booksapp", 7000, "http")
    ]
    endpoint = snapshot.services[0].endpoints[0]
    assert (endpoint.address, endpoint.port, endpoint.identity, endpoint.ready) == (
        "127.77.2.1",
        4143,
        BOOKS,
        True,
    )
    resource = snapshot.resources[0]
    assert (resource.api_version, resource.kind, resource.name, resource.namespace) == (
        "meshctl.io/v1alpha1",
        "ServiceProfile",
        "books.booksapp.svc.cluster.local",
        "booksapp",
    )
    assert _routes(store) == ["list"]


def test_version_grows_only_when_content_changes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.version
    assert store.refresh() is False and store.version == first
    (tmp_path / "config" / "books.yaml").write_text(PROFILE.format(route="list"))
    assert store.refresh() is True and store.version == first + 1
    (tmp_path / "config" / "books.yaml").write_text(PROFILE.format(route="list"))  # same bytes again
    assert store.refresh() is False and store.version == first + 1


def test_same_size_rewrite_is_seen(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = tmp_path / "config" / "books.yaml"
    path.write_text(PROFILE.format(route="aaaa"))
    store.refresh()
    path.write_text(PROFILE.format(route="bbbb"))  # same size, maybe the same mtime tick
    store.refresh()
    assert _routes(store) == ["bbbb"]


def test_invalid_file_keeps_its_last_good_content(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path)
    path = tmp_path / "config" / "books.yaml"
    path.write_text(PROFILE.format(route="list"))
    store.refresh()
    version = store.version
    path.write_text(PROFILE.format(route="list").replace("pathRegex: /books", "pathRegex: '(['"))
    with caplog.at_level(logging.ERROR, logger="meshctl.control.store"):
        assert store.refresh() is False
    assert store.version == version and _routes(store) == ["list"]
    assert list(store.invalid_files) == [path]
    assert "books.yaml: document 1: spec.routes[0].condition.pathRegex: invalid regular expression" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="meshctl.control.store"):
        store.refresh()
    assert caplog.text == ""  # logged once, not at every poll
    path.write_text(PROFILE.format(route="fixed"))
    assert store.refresh() is True and _routes(store) == ["fixed"] and not store.invalid_files


def test_invalid_new_file_contributes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (tmp_path / "config" / "bad.yaml").write_text("kind: [")
    (tmp_path / "config" / "good.yaml").write_text(PROFILE.format(route="list"))
    store.refresh()
    assert _routes(store) == ["list"]


def test_removed_file_removes_its_resources(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = tmp_path / "config" / "books.yaml"
    path.write_text(PROFILE.format(route="list"))
    store.refresh()
    path.unlink()
    assert store.refresh() is True and store.snapshot.resources == []


def test_duplicate_resource_first_file_wins(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (tmp_path / "config" / "a.yaml").write_text(PROFILE.format(route="from-a"))
    (tmp_path / "config" / "b.yaml").write_text(PROFILE.format(route="from-b"))
    store.refresh()
    assert _routes(store) == ["from-a"]


def test_control_json_change_updates_services_and_bad_json_is_ignored(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _control(tmp_path, endpoints=2)
    assert store.refresh() is True
    assert len(store.snapshot.services[0].endpoints) == 2
    (tmp_path / "control.json").write_text("{")
    assert store.refresh() is False
    assert len(store.snapshot.services[0].endpoints) == 2


def test_missing_config_dir_is_an_empty_set(tmp_path: Path) -> None:
    path = _control(tmp_path)
    (tmp_path / "config").rmdir()
    store = MeshStore(path, load_control_config(path))
    assert store.snapshot.resources == [] and len(store.snapshot.services) == 1


def test_waiters_wake_on_change_and_on_close(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, bool]:
        store = _store(tmp_path)
        start = store.version
        waiter = asyncio.ensure_future(store.wait_for_change(start))
        await asyncio.sleep(0)
        assert not waiter.done()
        (tmp_path / "config" / "books.yaml").write_text(PROFILE.format(route="list"))
        store.refresh()
        await asyncio.wait_for(waiter, 1)
        closing = asyncio.ensure_future(store.wait_for_change(store.version))
        store.close()
        await asyncio.wait_for(closing, 1)
        return store.version - start, store.closed

    assert asyncio.run(scenario()) == (1, True)
