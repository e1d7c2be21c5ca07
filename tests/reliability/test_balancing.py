"""Per-service load balancing through real processes: a control plane, three books replicas (app + inbound
proxy each, mTLS) and webapp's outbound proxy, the ServiceProfile's loadBalancer applied from the control
plane's config directory and changed while the mesh runs.

Measured: session affinity by header sends 100 % of one key's requests to one replica and spreads 1,000
keys within ±15 % over three; by cookie, the proxy sets the cookie and honours it after; a replica that
dies moves only its own keys; weights 3:1 give 75 ± 5 % under every policy.
"""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.local_mesh import free_subnet
from tests.reliability.procmesh import BOOKS_AUTHORITY, NS, ProcMesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PROFILE_FILE = "books-profile.yaml"
KEYS = 1000


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path_factory.mktemp("balancing"), free_subnet(), books=3)
    try:
        yield mesh.start()
    finally:
        mesh.stop()


def apply_profile(mesh: ProcMesh, load_balancer: dict[str, Any]) -> None:
    """Write the books ServiceProfile (JSON is YAML) and wait until webapp's proxy balances by it."""
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "ServiceProfile",
           "metadata": {"name": f"books.{NS}.svc.cluster.local", "namespace": NS},
           "spec": {"routes": [], "loadBalancer": load_balancer}}  # fmt: skip
    (mesh.root / "config").mkdir(exist_ok=True)
    (mesh.root / "config" / PROFILE_FILE).write_text(json.dumps(doc))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        applied = mesh.proxy_dump("webapp-0").get("load_balancers", {}).get(BOOKS_AUTHORITY, {})
        if all(applied.get(k) == v for k, v in load_balancer.items()) and applied:
            return
        time.sleep(0.1)
    raise AssertionError(f"the profile did not reach webapp's proxy: {applied}")


class Sender:
    """GETs of books through webapp's outbound proxy on one keep-alive connection; answers name the pod."""

    def __init__(self, mesh: ProcMesh) -> None:
        host, _, port = mesh.pods["webapp-0"].outbound.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def get(self, path: str = "/", headers: dict[str, str] | None = None) -> tuple[str, http.client.HTTPResponse]:
        self.conn.request("GET", path, headers={"Host": BOOKS_AUTHORITY, **(headers or {})})
        response = self.conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (response.status, body)
        return body.split(" ")[0], response

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def send(mesh: ProcMesh) -> Iterator[Sender]:
    sender = Sender(mesh)
    try:
        yield sender
    finally:
        sender.close()


def test_header_affinity_keeps_a_key_on_one_replica_and_spreads_keys(mesh: ProcMesh, send: Sender) -> None:
    apply_profile(mesh, {"policy": "session-affinity", "affinity": {"header": "x-user"}})
    alice = Counter(send.get(f"/a/{n}", {"x-user": "alice"})[0] for n in range(100))
    assert len(alice) == 1 and sum(alice.values()) == 100, alice
    spread = Counter(send.get("/k", {"x-user": f"user-{n}"})[0] for n in range(KEYS))
    print(f"\n{KEYS} keys over 3 replicas: {dict(spread)}")
    assert len(spread) == 3 and all(abs(c - KEYS / 3) <= 0.15 * KEYS / 3 for c in spread.values()), spread
    without = Counter(send.get("/none")[0] for _ in range(60))  # no key: balanced, not pinned
    assert len(without) == 3, without


def test_cookie_affinity_sets_the_cookie_once_and_honours_it(mesh: ProcMesh, send: Sender) -> None:
    apply_profile(mesh, {"policy": "session-affinity", "affinity": {"cookie": "books-session", "ttl": "30m"}})
    first, response = send.get("/first")
    cookie = response.getheader("set-cookie") or ""
    assert cookie.startswith("books-session=") and "Max-Age=1800" in cookie, cookie
    session = cookie.split(";")[0]
    pods = Counter(send.get(f"/again/{n}", {"cookie": f"theme=dark; {session}"})[0] for n in range(100))
    assert pods == {first: 100}
    _, again = send.get("/again", {"cookie": session})
    assert again.getheader("set-cookie") is None  # set once, not on every response
    others = {send.get("/new")[0] for _ in range(30)}  # every cookie-less request gets a fresh key
    assert len(others) >= 2


def test_weights_three_to_one_give_three_quarters_under_every_policy(mesh: ProcMesh, send: Sender) -> None:
    for policy in ("peak-ewma", "least-request", "round-robin"):
        apply_profile(mesh, {"policy": policy, "weights": {"books-0": 3, "books-1": 1, "books-2": 1}})
        counts = Counter(send.get(f"/w/{n}")[0] for n in range(1000))
        share = counts["books-0"] / (counts["books-0"] + counts["books-1"])
        print(f"\n{policy} weights 3:1:1 over 1000 requests: {dict(counts)}; books-0 of books-0+1: {share:.3f}")
        assert abs(share - 0.75) <= 0.05, (policy, counts)
        assert abs(counts["books-0"] / 1000 - 0.6) <= 0.05, (policy, counts)


def test_a_dead_replica_moves_only_its_own_keys(mesh: ProcMesh, send: Sender) -> None:
    """Last in the module: it kills books-2."""
    apply_profile(mesh, {"policy": "session-affinity", "affinity": {"header": "x-user"}})
    keys = [f"k-{n}" for n in range(300)]
    before = {k: send.get("/", {"x-user": k})[0] for k in keys}
    killed = time.monotonic()
    mesh.kill("books-2/proxy", signal.SIGKILL)
    deadline = killed + 10
    while len(mesh.books_endpoints()) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mesh.books_endpoints()) == 2
    gone_s = time.monotonic() - killed
    print(f"\nbooks-2's proxy killed: out of webapp's endpoints after {gone_s:.2f} s")
    assert gone_s <= 2.0  # discovery probes twice a second; the balancer also avoids it on the first refusal
    after = {k: send.get("/", {"x-user": k})[0] for k in keys}
    moved = [k for k in keys if after[k] != before[k]]
    assert moved and all(before[k] == "books-2" for k in moved)
    assert not [k for k in keys if before[k] == "books-2" and after[k] == "books-2"]
