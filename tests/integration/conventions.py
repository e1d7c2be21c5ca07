"""Conventions every command keeps, walked over the command table of meshctl.cli.flags against a running
local mesh: documents for -o json|yaml with the global flags after the sub-command, no escape codes with
NO_COLOR=1 on a pseudo-terminal, and -o a command does not print refused with exit 2."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from meshctl.cli.flags import FORMATS

ROOT = Path(__file__).resolve().parents[2]
EVERY_FORMAT = ("table", "wide", "short", "json", "yaml")
OPENAPI = {"openapi": "3.0.0", "info": {"title": "books", "version": "1"},
           "paths": {"/books": {"get": {}, "post": {}}, "/books/{id}": {"get": {}}}}  # fmt: skip
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: books, namespace: booksapp}
spec:
  selector: {matchLabels: {app: books}}
  template:
    metadata: {labels: {app: books}}
    spec:
      containers: [{name: books, image: "buoyantio/booksapp:v0.0.5", ports: [{containerPort: 7002}]}]
"""
# Exit codes a command may end with and still have printed its document: check exits 1 when a check fails.
MAY_FAIL = {"check": {0, 1}, "status": {0, 1}}
# Commands that stream events rather than print one document (their formats: test_tap_cli.py,
# test_debug_local.py and test_ops_local.py).
STREAMING = {"tap", "top", "debug", "logs"}


def invocations(home: Path, scratch: Path) -> dict[str, list[str]]:
    """The arguments of each command in the walk (flags are added after them)."""
    spec = scratch / "books.openapi.json"
    spec.write_text(json.dumps(OPENAPI), encoding="utf-8")
    profile = scratch / "books-profile.yaml"
    made = _meshctl(home, ["profile", "books", "--open-api", str(spec), "-n", "booksapp"], os.environ.copy())
    assert made.returncode == 0, made.stderr
    profile.write_text(made.stdout, encoding="utf-8")
    manifest = scratch / "books-deployment.yaml"
    manifest.write_text(DEPLOYMENT, encoding="utf-8")
    return {
        "version": ["version"],
        "up": ["up"],  # refused formats only: this mesh is running (its -o json is tested by test_routes_local)
        "down": ["down"],  # on an empty home: nothing to stop, still a document
        "status": ["status"],
        "check": ["check"],
        "check explain": ["check", "explain", "MC1001"],
        "routes": ["routes", "deploy/webapp"],
        "stat": ["stat", "deploy"],
        "profile": ["profile", "books", "--open-api", str(spec)],
        "apply": ["apply", "-f", str(profile), "--dry-run"],
        "get": ["get", "sp"],
        "delete": ["delete", "-f", str(profile), "--dry-run"],
        "describe": ["describe", "deploy/books"],
        "completion": ["completion", "bash"],
        "log-level": ["log-level", "deploy/books"],
        "inject": ["inject", str(manifest)],
        "uninject": ["uninject", str(manifest)],
        "install": ["install", "--crds"],
        "diagnostics": ["diagnostics"],
        "diagnostics proxy-metrics": ["diagnostics", "proxy-metrics", "deploy/books"],
        "diagnostics config": ["diagnostics", "config", "deploy/books"],
    }


def _meshctl(home: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "MESHCTL_HOME": str(home.parent / "not-this-one")}  # --home after the command must win
    return subprocess.run([sys.executable, "-m", "meshctl", *args, "--home", str(home)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def _after(args: list[str], home: Path, output: str) -> list[str]:
    return [*args, "-n", "booksapp", "--platform", "local", "-o", output]


def documents_with_flags_after(env: dict[str, str], home: Path, scratch: Path) -> None:
    table = invocations(home, scratch)
    assert set(table) == set(FORMATS) - STREAMING, "every command of the CLI is walked"
    for path, args in table.items():
        target = scratch / "empty-home" if path == "down" else home
        for output in ("json", "yaml"):
            if output not in FORMATS[path] or path == "up":
                continue
            done = _meshctl(target, _after(args, home, output), env)
            assert done.returncode in MAY_FAIL.get(path, {0}), f"{path} -o {output}: {done.stderr}"
            # one document, or a stream of them (`install` prints manifests for `kubectl apply -f -`)
            documents: list[Any] = [json.loads(done.stdout)] if output == "json" else [*yaml.safe_load_all(done.stdout)]
            printed = f"{path} -o {output} printed {done.stdout[:200]!r}"
            assert documents and all(isinstance(d, dict) and d for d in documents), printed
            assert "\x1b[" not in done.stdout + done.stderr


def unsupported_output_refused(env: dict[str, str], home: Path, scratch: Path) -> None:
    for path, args in invocations(home, scratch).items():
        for output in EVERY_FORMAT:
            if output in FORMATS[path]:
                continue
            done = _meshctl(home, _after(args, home, output), env)
            assert done.returncode == 2, f"{path} -o {output}: exit {done.returncode}: {done.stderr}"
            first, *rest = done.stderr.splitlines()
            assert f"not -o {output}" in first and all(f.value in first for f in FORMATS[path]), done.stderr
            assert rest and rest[0].startswith("hint: "), done.stderr
            assert not done.stdout


def on_terminal(args: list[str], env: dict[str, str], timeout_s: float = 120.0) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; everything it showed, and its exit code."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return process.wait(timeout=10), shown.decode("utf-8", "replace")


def no_escape_codes_on_a_terminal(env: dict[str, str], home: Path, scratch: Path) -> None:
    base = {**env, "MESHCTL_HOME": str(home), "TERM": "xterm-256color"}
    base.pop("FORCE_COLOR", None)
    # The harness sees colour when there is some: status paints "running" green on a terminal.
    _, coloured = on_terminal([sys.executable, "-m", "meshctl", "status"], {**base, "NO_COLOR": ""})
    assert "\x1b[32m" in coloured
    plain = {**base, "NO_COLOR": "1"}
    for path, args in invocations(home, scratch).items():
        if path == "up":
            continue  # it would try to start a second mesh in this home
        target = scratch / "empty-home" if path == "down" else home
        code, shown = on_terminal([sys.executable, "-m", "meshctl", *args, "-n", "booksapp", "--home", str(target)],
                                  plain)  # fmt: skip
        assert code in MAY_FAIL.get(path, {0}), f"{path}: exit {code}: {shown}"
        assert "\x1b" not in shown, f"{path} printed escape codes with NO_COLOR=1: {shown!r}"
        assert shown.strip()
