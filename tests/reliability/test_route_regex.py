"""A route regex cannot freeze a proxy.

`pathRegex: "/(a+)+"` backtracks exponentially in a backtracking engine: 25 characters took 3 s, each
one more doubles it, and the proxy's event loop waits. Routes match with RE2 now (linear time), and
`apply` refuses what RE2 does not accept, naming the field. The freezing cases run in a child process,
so the test process itself can never hang on them.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl.resources import ResourceError, parse_text
from tests.integration.test_proxy_grpc_support import AUTHORITY
from tests.reliability.apps import RecordingApp
from tests.reliability.proxy_process import ProxyProcess

EVIL_PATH = "/" + "a" * 38 + "!"  # 40 characters: about a day of backtracking for the old engine
PROFILE = {
    "routes": [
        {"name": "evil", "condition": {"pathRegex": "/(a+)+"}},
        {"name": "GET /books/{id}", "condition": {"method": "GET", "pathRegex": r"/books/\d+"}},
    ]
}
MESHCTL = [sys.executable, "-m", "meshctl"]


def test_the_compiled_profile_matches_an_evil_path_at_once() -> None:
    code = (
        "import time; from meshctl.proxy.policy.route import compile_profile\n"
        f"profile = compile_profile({PROFILE!r})\n"
        "started = time.perf_counter()\n"
        f"assert profile.route_for('GET', {EVIL_PATH!r}) == '[DEFAULT]'\n"
        "assert profile.route_for('GET', '/aaaa') == 'evil'\n"
        "assert profile.route_for('GET', '/books/12') == 'GET /books/{id}'\n"
        "print(time.perf_counter() - started)\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("matching a 40-character path against /(a+)+ did not finish in 20 s")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 0.05


@pytest.fixture(scope="module")
def app() -> Iterator[RecordingApp]:
    server = RecordingApp()
    yield server
    server.stop()


def get(port: int, path: str, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": AUTHORITY})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


@pytest.mark.integration
def test_a_proxy_answers_other_requests_while_an_evil_path_is_matched(app: RecordingApp) -> None:
    proxy = ProxyProcess(app.port, PROFILE)
    try:
        evil: list[object] = []
        sender = threading.Thread(target=lambda: evil.append(_try(get, proxy.outbound_port, EVIL_PATH, 10.0)))
        sender.start()
        time.sleep(0.05)  # the evil request is being matched (or would be, forever)
        for n in range(5):
            outcome = _try(get, proxy.outbound_port, f"/books/{n}", 2.0)
            assert isinstance(outcome, tuple), f"request {n} next to the evil one: {outcome}"
            status, elapsed = outcome
            assert status == 200 and elapsed < 1.0, (status, elapsed)
        sender.join(12)
        assert evil and isinstance(evil[0], tuple) and evil[0][0] == 200, evil
        assert f"GET {EVIL_PATH} HTTP/1.1" in app.lines()
    finally:
        proxy.stop()


def _try(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except OSError as exc:
        return exc


def test_apply_refuses_a_pattern_re2_does_not_accept_naming_the_field(tmp_path: Path) -> None:
    document = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp}
spec:
  routes:
  - {name: list, condition: {method: GET, pathRegex: /books}}
  - {name: one, condition: {method: GET, pathRegex: '/books/\\d+'}}
  - {name: admin, condition: {pathRegex: '/(?!public).*'}}
"""
    with pytest.raises(ResourceError) as raised:
        parse_text(document, "books.yaml")
    assert str(raised.value).startswith("books.yaml: document 1: spec.routes[2].condition.pathRegex: ")
    path = tmp_path / "books.yaml"
    path.write_text(document)
    env = {"MESHCTL_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    done = subprocess.run([*MESHCTL, "apply", "-f", str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode != 0 and done.stdout == ""
    assert "spec.routes[2].condition.pathRegex: invalid regular expression" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "config").exists() or not any((tmp_path / "home" / "config").iterdir())
