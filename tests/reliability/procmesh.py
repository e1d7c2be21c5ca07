"""A small mesh of real processes on a free loopback subnet: the control plane, sidecar proxies and apps.

    webapp-0 (127.N.1.1): an outbound proxy only; the test is its app and sends through 127.N.1.1:4140
    books-0, books-1 (127.N.2.1, 127.N.2.2): app :7000 (tests.reliability.app) behind an inbound proxy :4143

The files are those `meshctl up` writes (ControlConfig, ProxyConfig, tokens, identity), written here so a
test owns every process and can kill -9 any of them. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.control.ca import ensure_identity_material
from meshctl.control.config import hash_token
from meshctl.identity import control_plane_identity, workload_identity

NS = "booksapp"
BOOKS_AUTHORITY = f"books.{NS}.svc.cluster.local:7000"
REPO = Path(__file__).resolve().parents[2]
START_S = 60.0  # generous: the machine may be busy with other test runs


@dataclass(frozen=True)
class Pod:
    name: str  # "books-0"
    deployment: str
    ip: str
    serves: bool  # an app with an inbound proxy (else an outbound-only client)

    @property
    def identity(self) -> str:
        return workload_identity(self.deployment, NS)

    @property
    def app(self) -> str:
        return f"{self.ip}:7000"

    @property
    def inbound(self) -> str:
        return f"{self.ip}:4143"

    @property
    def outbound(self) -> str:
        return f"{self.ip}:4140"

    @property
    def admin(self) -> str:
        return f"{self.ip}:4191"


@dataclass
class ProcMesh:
    root: Path
    subnet: str  # "127.N.0.0/16"
    books: int = 2
    pods: dict[str, Pod] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # "control", "books-0/app", ...

    def __post_init__(self) -> None:
        self.base = ".".join(self.subnet.split(".")[:2])
        self.pods["webapp-0"] = Pod("webapp-0", "webapp", f"{self.base}.1.1", serves=False)
        for i in range(self.books):
            self.pods[f"books-{i}"] = Pod(f"books-{i}", "books", f"{self.base}.2.{i + 1}", serves=True)

    @property
    def control_api(self) -> str:
        return f"{self.base}.0.2:8086"

    @property
    def control_admin(self) -> str:
        return f"{self.base}.0.2:9996"

    # -- files -------------------------------------------------------------------------------------

    def write(self) -> None:
        ensure_identity_material(self.root / "identity")
        for name in ("config", "tokens", "proxies", "logs"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        tokens: dict[str, dict[str, str]] = {}
        for pod in self.pods.values():
            token = f"{pod.name}-token-{os.urandom(8).hex()}"
            (self.root / "tokens" / f"{pod.name}.token").write_text(token)
            tokens[pod.name] = {"token_sha256": hash_token(token), "identity": pod.identity}
            (self.root / "proxies" / f"{pod.name}.json").write_text(json.dumps(self._proxy_config(pod)))
        endpoints = [
            {"address": p.ip, "port": 4143, "pod": p.name, "identity": p.identity, "probe": p.admin}
            for p in self.pods.values()
            if p.serves
        ]
        control = {
            "listen": self.control_api, "admin": self.control_admin,
            "identity_dir": "identity", "config_dir": "config", "tokens": tokens,
            "services": [{"name": "books", "namespace": NS, "port": 7000, "protocol": "http", "endpoints": endpoints}],
        }  # fmt: skip
        (self.root / "control.json").write_text(json.dumps(control))

    def _proxy_config(self, pod: Pod) -> dict[str, Any]:
        return {
            "pod": pod.name, "namespace": NS, "deployment": pod.deployment, "service_account": pod.deployment,
            "identity": pod.identity,
            "inbound": {"listen": pod.inbound, "app": pod.app, "app_protocol": "http"} if pod.serves else None,
            "outbound": {"listen": pod.outbound}, "ingress": None, "admin": {"listen": pod.admin},
            "control": {"address": self.control_api, "identity": control_plane_identity()},
            "trust_anchors": str(self.root / "identity" / "ca.pem"),
            "token_file": str(self.root / "tokens" / f"{pod.name}.token"),
            "log_level": "info",
        }  # fmt: skip

    # -- processes ---------------------------------------------------------------------------------

    def start(self) -> ProcMesh:
        self.write()
        self.spawn("control", "meshctl.control", "--config", str(self.root / "control.json"))
        wait_http_ok(self.control_admin, "/ready", START_S, self.procs["control"])
        for pod in self.pods.values():
            if pod.serves:
                self.spawn(f"{pod.name}/app", "tests.reliability.app", "--listen", pod.app, "--pod", pod.name)
            config = str(self.root / "proxies" / f"{pod.name}.json")
            self.spawn(f"{pod.name}/proxy", "meshctl.proxy", "--config", config)
        for pod in self.pods.values():
            wait_http_ok(pod.admin, "/ready", START_S, self.procs[f"{pod.name}/proxy"])
            if pod.serves:
                wait_http_ok(pod.app, "/", START_S, self.procs[f"{pod.name}/app"])
        deadline = time.monotonic() + START_S  # and the client routes to every replica
        while len(self.books_endpoints()) < self.books and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def spawn(self, name: str, module: str, *args: str) -> None:
        log = (self.root / "logs" / f"{name.replace('/', '-')}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=self.root
        )
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def log(self, name: str) -> str:
        return (self.root / "logs" / f"{name.replace('/', '-')}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def proxy_dump(self, pod: str) -> dict[str, Any]:
        status, body = http_get(self.pods[pod].admin, "/config.json")
        assert status == 200, body
        dump: dict[str, Any] = json.loads(body)
        return dump

    def books_endpoints(self, seen_by: str = "webapp-0") -> list[str]:
        """The books endpoints `seen_by`'s proxy routes to: ["127.N.2.1:4143 books-0", ...]."""
        endpoints: list[str] = self.proxy_dump(seen_by)["endpoints"].get(BOOKS_AUTHORITY, [])
        return endpoints


# -- HTTP helpers ----------------------------------------------------------------------------------


def http_get(address: str, path: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_http_ok(address: str, path: str, within_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + within_s
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode} before {address}{path} answered")
        with contextlib.suppress(OSError, http.client.HTTPException):
            last = http_get(address, path, timeout=1.0)[0]
            if last == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{address}{path} did not answer 200 within {within_s:g}s (last: {last!r})")


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # "502 <mesh-proxy-error>" → count
    lost: Counter[str] = field(default_factory=Counter)  # no response: "timeout", "reset", ...
    slowest_s: float = 0.0
    # (second it was due, second it was answered, "ok" or the failure), seconds from the start of the run
    outcomes: list[tuple[float, float, str]] = field(default_factory=list)
    actions_at: list[float] = field(default_factory=list)  # when each `at` action ran

    def failures_due_after(self, second: float) -> list[str]:
        return [outcome for due, _, outcome in self.outcomes if due >= second and outcome != "ok"]

    def failures_answered_before(self, second: float) -> list[str]:
        return [outcome for _, done, outcome in self.outcomes if done < second and outcome != "ok"]

    @property
    def answered(self) -> int:
        return self.ok + sum(self.failed.values())

    def __str__(self) -> str:
        return f"sent {self.sent}, ok {self.ok}, failed {dict(self.failed)}, lost {dict(self.lost)}"


def load(
    address: str,
    authority: str,
    *,
    rps: float,
    seconds: float,
    timeout_s: float = 10.0,
    at: dict[float, Any] | None = None,
) -> LoadResult:
    """Open-loop GETs at `rps` for `seconds` (one connection each, at most 32 in flight); `at` maps a
    second of the run to a callable run then (e.g. a kill). Bounded: every request has `timeout_s`."""
    result = LoadResult()
    actions = sorted((at or {}).items())
    host, _, port = address.rpartition(":")

    def one(i: int) -> tuple[str, str, float]:
        kind, detail = request(i)
        return kind, detail, time.monotonic() - start

    def request(i: int) -> tuple[str, str]:
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
        try:
            conn.request("GET", f"/load/{i}", headers={"Host": authority})
            response = conn.getresponse()
            response.read()
            if 200 <= response.status < 300:
                return "ok", ""
            return "failed", f"{response.status} {response.getheader('mesh-proxy-error') or response.reason}"
        except TimeoutError:
            return "lost", "timeout"
        except (OSError, http.client.HTTPException) as exc:
            return "lost", type(exc).__name__
        finally:
            conn.close()
            result.slowest_s = max(result.slowest_s, time.monotonic() - started)

    total = int(rps * seconds)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = []
        for i in range(total):
            due = start + i / rps
            while actions and actions[0][0] <= i / rps:
                result.actions_at.append(time.monotonic() - start)
                actions.pop(0)[1]()
            time.sleep(max(0.0, due - time.monotonic()))
            futures.append(pool.submit(one, i))
        for i, future in enumerate(futures):
            kind, detail, done = future.result()
            result.outcomes.append((i / rps, done, "ok" if kind == "ok" else f"{kind}: {detail}"))
            result.sent += 1
            if kind == "ok":
                result.ok += 1
            elif kind == "failed":
                result.failed[detail] += 1
            else:
                result.lost[detail] += 1
    return result
