"""The state directory and `mesh.json`, the record of a running local mesh.

`mesh.json` lists every component with its addresses and processes (pid plus the kernel's start time of
the pid, so a pid reused by an unrelated process is never mistaken for ours). It is written as soon as
`up` starts a process, so a crash mid-way leaves a record `down` can clean up, and removed by `down`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshctl.errors import ConfigError, ConflictError, UsageError

STATE_VERSION = 1


@dataclass(frozen=True)
class Layout:
    """Where everything lives under the state directory."""

    home: Path

    @property
    def mesh_json(self) -> Path:
        return self.home / "mesh.json"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"

    @property
    def identity(self) -> Path:
        return self.home / "identity"

    @property
    def config(self) -> Path:
        return self.home / "config"

    @property
    def proxies(self) -> Path:
        return self.home / "proxies"

    @property
    def tokens(self) -> Path:
        return self.home / "tokens"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def control_json(self) -> Path:
        return self.home / "control.json"

    @property
    def prometheus(self) -> Path:
        return self.home / "prometheus"

    @property
    def prometheus_yml(self) -> Path:
        return self.prometheus / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus / "data"

    def proxy_config(self, pod: str) -> Path:
        return self.proxies / f"{pod}.json"

    def token(self, pod: str) -> Path:
        return self.tokens / f"{pod}.token"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        make_home(self.home)
        for directory in (self.config, self.proxies, self.logs, self.prometheus, self.prometheus_data):
            directory.mkdir(parents=True, exist_ok=True)
        for private in (self.identity, self.tokens):
            private.mkdir(parents=True, exist_ok=True)
            private.chmod(0o700)


@dataclass
class ProcessRecord:
    role: str  # "app" | "proxy" | "control" | "prometheus" | "traffic"
    pid: int
    start_ticks: int  # field 22 of /proc/<pid>/stat when started: tells our process from a reused pid
    log: str
    argv: list[str]


@dataclass
class ComponentRecord:
    name: str  # the pod name, unique in the mesh
    kind: str  # "control-plane" | "workload" | "ingress" | "prometheus" | "traffic"
    namespace: str
    deployment: str
    pod: str
    addresses: dict[str, str]
    identity: str | None = None
    service: str | None = None
    service_port: int | None = None
    protocol: str | None = None
    processes: list[ProcessRecord] = field(default_factory=list)


@dataclass
class MeshRecord:
    started_at: str  # ISO 8601 UTC
    up_pid: int  # the `meshctl up` that started the mesh
    home: str
    subnet: str
    demo: bool
    state: str = "starting"  # "starting" while `up` runs, then "running"
    urls: dict[str, str] = field(default_factory=dict)
    components: list[ComponentRecord] = field(default_factory=list)
    version: int = STATE_VERSION

    def component(self, name: str) -> ComponentRecord | None:
        return next((c for c in self.components if c.name == name), None)

    def processes(self) -> list[ProcessRecord]:
        return [p for c in self.components for p in c.processes]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _component(raw: dict[str, Any]) -> ComponentRecord:
    processes = [ProcessRecord(**p) for p in raw.pop("processes", [])]
    return ComponentRecord(**raw, processes=processes)


def parse_record(text: str) -> MeshRecord:
    """Parse mesh.json; ConfigError when it is not a record this version wrote."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported version {raw.get('version') if isinstance(raw, dict) else None!r}")
        components = [_component(dict(c)) for c in raw.pop("components", [])]
        return MeshRecord(**raw, components=components)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"mesh.json is not readable: {exc}") from None


def read_record(layout: Layout) -> MeshRecord | None:
    check_home(layout.home, writing=False)
    try:
        text = layout.mesh_json.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _bad_home(layout.home, f"cannot read {layout.mesh_json}: {exc.strerror or exc}") from None
    return parse_record(text)


_HOME_HINT = "point MESHCTL_HOME (or --home) at a directory of your own, e.g. ~/.meshctl"


def _bad_home(home: Path, problem: str, hint: str = _HOME_HINT) -> UsageError:
    return UsageError(f"the state directory {home} cannot be used: {problem}", hint=hint)


def check_home(home: Path, *, writing: bool) -> None:
    """Refuse, with one line and a hint, a state directory that is a file, a dangling symlink, another
    user's or (when `writing`) not writable. A directory that does not exist yet is fine."""
    try:
        st = home.stat()
    except FileNotFoundError:
        if home.is_symlink():
            raise _bad_home(home, f"it is a symlink to {os.readlink(home)}, which does not exist",
                            hint=f"create the target directory, or remove the symlink {home}") from None  # fmt: skip
        return
    except NotADirectoryError:
        parent = next((p for p in home.parents if p.exists() and not p.is_dir()), home.parent)
        raise _bad_home(home, f"{parent} is a file, not a directory") from None
    except OSError as exc:  # e.g. a parent without search permission
        raise _bad_home(home, exc.strerror or str(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise _bad_home(home, "it is a file, not a directory",
                        hint=f"remove or rename the file, or {_HOME_HINT}")  # fmt: skip
    if st.st_uid != os.geteuid():
        raise _bad_home(home, f"it belongs to another user (uid {st.st_uid})", hint=_HOME_HINT)
    if not os.access(home, os.R_OK | os.X_OK | (os.W_OK if writing else 0)):
        raise _bad_home(home, "permission denied", hint=f"make it yours and writable: `chmod u+rwx {home}`")


def make_home(home: Path) -> None:
    """Create the state directory (and its parents) or say in one line why it cannot be."""
    check_home(home, writing=True)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _bad_home(home, f"cannot create it: {exc.strerror or exc}") from None


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_record(layout: Layout, record: MeshRecord) -> None:
    write_atomic(layout.mesh_json, record.to_json())


def remove_record(layout: Layout) -> None:
    with contextlib.suppress(FileNotFoundError):
        layout.mesh_json.unlink()


@contextlib.contextmanager
def exclusive(layout: Layout, action: str) -> Iterator[None]:
    """Only one `up` or `down` at a time per state directory."""
    make_home(layout.home)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(
                f"another `meshctl up` or `meshctl down` is working in {layout.home}",
                hint=f"wait for it to finish, then run `meshctl {action}` again",
            ) from None
        yield
    finally:
        os.close(fd)
