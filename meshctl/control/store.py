"""The mesh as proxies see it: services from control.json, resources from the config directory.

Files are polled about once a second (mtime, size and inode, confirmed by a digest of the content):
cheap for the few files a mesh has, and it works the same on every filesystem. A file that becomes
invalid is logged once and its last good content is kept, so a typo in one profile never takes routes
away from running proxies. Every change of content bumps the snapshot version; versions start from the
wall clock so that they also grow across restarts.

Each change is also kept as a delta (what changed since the version before, discovery_delta.py),
serialised once like the snapshot, so that proxies that merge deltas receive a service or two
instead of the whole mesh; the last DELTAS_KEPT of them let a watcher that fell behind catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from meshctl.api import mesh_pb2
from meshctl.control.config import Address, ControlConfig, EndpointConfig, control_config_from_bytes
from meshctl.discovery_delta import entry_wires, make_delta
from meshctl.errors import ConfigError
from meshctl.resources import MeshResource, ResourceError, parse_text, resource_files
from meshctl.resources.loader import MAX_FILE_BYTES

log = logging.getLogger("meshctl.control.store")

_RECENT_NS = 2_000_000_000  # a file modified this recently is re-read: mtime granularity can hide a write
DELTAS_KEPT = 16  # a watcher further behind than this gets the whole snapshot


class _WatchedFile:
    """Detects a change of content: by (mtime, size, inode), confirmed with a digest of the bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._digest = b""

    def changed(self) -> bytes | None:
        """The new content, or None when unchanged; OSError when unreadable."""
        st = self.path.stat()
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self._signature and time.time_ns() - st.st_mtime_ns > _RECENT_NS:
            return None
        if st.st_size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES} bytes", str(self.path))
        content = self.path.read_bytes()
        self._signature = signature
        digest = hashlib.sha256(content).digest()
        if digest == self._digest:
            return None
        self._digest = digest
        return content


@dataclass
class _FileState:
    watched: _WatchedFile
    resources: list[MeshResource] = field(default_factory=list)  # the last good content
    error: str | None = None  # the current problem, if the file on disk is invalid


class MeshStore:
    def __init__(
        self, config_path: Path | None, config: ControlConfig, probed_ready: Callable[[Address], bool] | None = None
    ) -> None:
        """`probed_ready(probe)` says whether an endpoint with a readiness probe is ready (see readiness.py)."""
        self.config = config
        self._probed_ready = probed_ready
        self._config_file = None if config_path is None else _WatchedFile(config_path)
        self._files: dict[Path, _FileState] = {}
        self._content = b""
        self.version = time.time_ns() // 1_000_000
        self.snapshot = mesh_pb2.Snapshot(version=self.version)
        self.snapshot_wire = self.snapshot.SerializeToString(deterministic=True)
        self._entries = entry_wires(self.snapshot)  # each service's and resource's encoding, by key
        self._deltas: deque[tuple[int, bytes]] = deque(maxlen=DELTAS_KEPT)  # (version, delta's wire), in order
        self._chain: tuple[tuple[int, int], list[bytes]] = ((-1, -1), [])  # the last answer of deltas_since
        self._changed = asyncio.Event()
        self.closed = False
        self._missing_dir_logged = False
        self._dirty = True
        if self._config_file is not None:
            with contextlib.suppress(OSError):
                self._config_file.changed()  # `config` is this content: only later changes matter
        self.refresh()

    # --- reading ----------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Re-read whatever changed on disk; True when the snapshot changed."""
        self._reload_config()
        self._reload_resources()
        if not self._dirty:
            return False
        self._dirty = False
        return self._rebuild()

    def readiness_changed(self) -> None:
        """An endpoint proxy became ready or stopped being ready: publish a new snapshot."""
        self._rebuild()

    def probes(self) -> list[Address]:
        return [e.probe for s in self.config.services for e in s.endpoints if e.probe is not None]

    def _ready(self, endpoint: EndpointConfig) -> bool:
        if endpoint.probe is None or self._probed_ready is None:
            return endpoint.ready
        return endpoint.ready and self._probed_ready(endpoint.probe)

    @property
    def invalid_files(self) -> dict[Path, str]:
        return {path: state.error for path, state in self._files.items() if state.error is not None}

    def _reload_config(self) -> None:
        if self._config_file is None:
            return
        try:
            content = self._config_file.changed()
            if content is None:
                return
            config = control_config_from_bytes(content, self._config_file.path)
        except OSError as exc:
            log.error("cannot read %s, keeping the last good configuration: %s", self._config_file.path, exc)
            return
        except ConfigError as exc:
            log.error("control configuration not reloaded, keeping the last good one: %s", exc.message)
            return
        for name in ("listen", "admin", "identity_dir", "config_dir"):
            if getattr(config, name) != getattr(self.config, name):
                log.warning("control configuration: a change of %s takes effect on restart", name)
        self.config = replace(
            config,
            listen=self.config.listen,
            admin=self.config.admin,
            identity_dir=self.config.identity_dir,
            config_dir=self.config.config_dir,
        )
        self._dirty = True
        log.info("control configuration reloaded: %d services, %d tokens", len(config.services), len(config.tokens))

    def _reload_resources(self) -> None:
        directory = self.config.config_dir
        try:
            paths = resource_files(directory)
        except OSError:
            if not self._missing_dir_logged:
                log.info("resource directory %s does not exist yet", directory)
                self._missing_dir_logged = True
            paths = []
        for gone in set(self._files) - set(paths):
            log.info("resource file removed: %s", gone.name)
            del self._files[gone]
            self._dirty = True
        for path in paths:
            state = self._files.setdefault(path, _FileState(_WatchedFile(path)))
            try:
                content = state.watched.changed()
                if content is None:
                    continue
                resources = parse_text(content.decode("utf-8"), path.name)
            except ResourceError as exc:
                self._invalid(state, exc.message, [str(p) for p in exc.problems])
                continue
            except (OSError, UnicodeDecodeError) as exc:
                self._invalid(state, str(exc), [f"{path.name}: {exc}"])
                continue
            state.resources, state.error = resources, None
            self._dirty = True
            log.info("resource file loaded: %s (%d resources)", path.name, len(resources))

    def _invalid(self, state: _FileState, error: str, problems: list[str]) -> None:
        state.error = error
        for problem in problems:
            log.error("invalid resource (%d kept from the last good version): %s", len(state.resources), problem)

    # --- building ---------------------------------------------------------------------------------

    def _rebuild(self) -> bool:
        snapshot = mesh_pb2.Snapshot(services=self._services(), resources=self._resources())
        content = snapshot.SerializeToString(deterministic=True)
        if content == self._content:
            return False
        self._content = content
        self.version += 1
        snapshot.version = self.version
        self.snapshot = snapshot
        # Serialised once per change, not once per watcher: at 1,000 watchers that was half the fan-out's CPU.
        self.snapshot_wire = snapshot.SerializeToString(deterministic=True)
        entries = entry_wires(snapshot)
        if entries is not None and self._entries is not None:
            delta = make_delta(snapshot, self.version - 1, self._entries, entries)
            self._deltas.append((self.version, delta.SerializeToString(deterministic=True)))
        else:  # two entries share a key: no delta can say which one changed, so the chain starts again
            self._deltas.clear()
        self._entries = entries
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        log.info(
            "snapshot %d: %d services, %d resources",
            self.version,
            len(snapshot.services),
            len(snapshot.resources),
        )
        return True

    def _services(self) -> list[mesh_pb2.Service]:
        out = []
        # The order discovery_delta.sort_services gives a merged snapshot.
        for service in sorted(self.config.services, key=lambda s: (s.namespace, s.name, s.port)):
            endpoints = [
                mesh_pb2.Endpoint(
                    address=e.address,
                    port=e.port,
                    identity=e.identity,
                    pod=e.pod,
                    ready=self._ready(e),
                    labels=dict(e.labels),
                )
                for e in service.endpoints
            ]
            out.append(
                mesh_pb2.Service(
                    name=service.name,
                    namespace=service.namespace,
                    port=service.port,
                    protocol=service.protocol,
                    endpoints=endpoints,
                )
            )
        return out

    def _resources(self) -> list[mesh_pb2.Resource]:
        chosen: dict[tuple[str, str, str], MeshResource] = {}
        for path in sorted(self._files):
            for resource in self._files[path].resources:
                first = chosen.setdefault(resource.key, resource)
                if first is not resource:
                    log.warning("%s defined again in %s; the one in %s is used", resource.ref, path.name, first.source)
        return [
            mesh_pb2.Resource(
                api_version=r.api_version,
                kind=r.kind,
                name=r.name,
                namespace=r.namespace,
                spec_json=r.spec_json(),
            )
            for _, r in sorted(chosen.items())
        ]

    def deltas_since(self, version: int) -> list[bytes]:
        """The serialised deltas from `version` to the current one, in order; [] when the watcher must get
        the whole snapshot instead: a delta it needs is no longer kept, or the chain is larger than it."""
        if self._chain[0] == (version, self.version):  # after a change, nearly every watcher asks for the same
            return self._chain[1]
        if not self._deltas or self._deltas[0][0] > version + 1 or version >= self.version:
            chain = []
        else:
            chain = [wire for v, wire in self._deltas if v > version]
            chain = chain if sum(map(len, chain)) < len(self.snapshot_wire) else []
        self._chain = ((version, self.version), chain)
        return chain

    # --- waiting ----------------------------------------------------------------------------------

    async def wait_for_change(self, version: int) -> None:
        """Return once the snapshot is newer than `version`, or the store is closed."""
        while self.version <= version and not self.closed:
            await self._changed.wait()

    async def poll(self, interval: float = 1.0) -> None:
        while not self.closed:
            await asyncio.sleep(interval)
            try:
                self.refresh()
            except OSError as exc:  # a vanished directory or a permission change: try again next time
                log.error("cannot read the configuration: %s", exc)

    def close(self) -> None:
        """Wake every watcher so its stream ends cleanly."""
        self.closed = True
        self._changed.set()
