"""`meshctl describe`'s model and renderers: which resources apply to a workload, from where, and the live
state its proxies and its clients' proxies report. Golden files pin the text and JSON forms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshctl.cli.describe_render import document, render_text
from meshctl.observe.describe import Resources, Workload, describe
from meshctl.observe.describe_live import live_state
from meshctl.observe.describe_readers import COVERED_KINDS, NOT_DESCRIBED, READERS
from meshctl.resources import KINDS, parse_text
from tests.unit.observe.conftest import golden

NS = "booksapp"
RESOURCES = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp}
spec:
  routes:
  - name: GET /books/{id}
    condition: {method: GET, pathRegex: '/books/\\d+'}
    responseClasses: [{condition: {status: {min: 500, max: 599}}, isFailure: true}]
    timeout: 300ms
    isRetryable: true
  - name: POST /books
    condition: {method: POST, pathRegex: /books}
  retryBudget: {retryRatio: 0.1, minRetriesPerSecond: 5, ttl: 20s}
  failureAccrual: {consecutiveFailures: 3, minPenalty: 2s, maxPenalty: 30s}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: books-canary, namespace: booksapp}
spec:
  service: books
  backends: [{service: books, weight: 90}, {service: books-v2, weight: 10}]
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: authors-move, namespace: booksapp}
spec:
  service: authors
  backends: [{service: authors, weight: 1}, {service: books, weight: 3}]
---
apiVersion: meshctl.io/v1alpha1
kind: FaultInjection
metadata: {name: books-faults, namespace: booksapp}
spec:
  service: books
  routes: ["POST /books"]
  abort: {percent: 10, httpStatus: 502}
  delay: {percent: 5, fixedDelay: 200ms}
---
apiVersion: meshctl.io/v1alpha1
kind: FaultInjection
metadata: {name: webapp-faults, namespace: booksapp}
spec: {service: webapp, abort: {percent: 50}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: books-routes, namespace: booksapp}
spec:
  matches:
  - {name: read, methods: [GET], pathRegex: '/books(/.*)?'}
  - {name: write, methods: [POST], pathRegex: /books}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: books-readers, namespace: booksapp}
spec:
  destination: {kind: ServiceAccount, name: books}
  rules: [{kind: HTTPRouteGroup, name: books-routes, matches: [read]}]
  sources: [{kind: ServiceAccount, name: webapp}, {kind: ServiceAccount, name: traffic, namespace: load}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: authors-callers, namespace: booksapp}
spec:
  destination: {kind: ServiceAccount, name: authors}
  rules: [{kind: HTTPRouteGroup, name: books-routes}]
  sources: [{kind: ServiceAccount, name: books}]
---
apiVersion: meshctl.io/v1alpha1
kind: MeshIngress
metadata: {name: booksapp, namespace: booksapp}
spec:
  rules: [{host: books.example.com, paths: [{pathPrefix: /api, service: books}, {pathPrefix: /, service: webapp}]}]
"""
BOOKS = Workload(target="deploy/books", namespace=NS, services=("books",), service_accounts=("books",),
                 instances=("books-0", "books-1"), deployments=("books",))  # fmt: skip
AUTHORITY = "books.booksapp.svc.cluster.local:7002"
ENDPOINTS = ["127.77.3.1:4143 books-0", "127.77.3.2:4143 books-1"]


def resources(text: str = RESOURCES) -> Resources:
    return Resources((r, f"/home/u/.meshctl/config/{r.kind.lower()}-{r.namespace}-{r.name}.yaml")
                     for r in parse_text(text, "test.yaml"))  # fmt: skip


def dump(ready: bool = True, breakers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shape of a proxy's GET /config.json (meshctl/proxy/runtime.py config_dump)."""
    return {"ready": ready, "snapshot_version": 42, "certificate": {"identity": "x", "not_after": "2026-12-01"},
            "endpoints": {AUTHORITY: ENDPOINTS, "authors.booksapp.svc.cluster.local:7001": ["127.77.2.1:4143 a-0"]},
            "circuit_breakers": breakers or {}}  # fmt: skip


LIVE_DUMPS: dict[str, dict[str, Any] | str] = {
    "books-0": dump(),
    "books-1": dump(),
    "webapp-0": dump(breakers={AUTHORITY: {
        "consecutiveFailures": 3, "minPenalty": "2s", "maxPenalty": "30s", "ejections": 2,
        "endpoints": {"127.77.3.2:4143": {"state": "ejected", "failures_in_a_row": 0, "ejected_for_s": 3.5},
                      "127.77.3.1:4143": {"state": "in", "failures_in_a_row": 1, "ejected_for_s": 0.0}}}}),
    "webapp-1": "connection refused",
}  # fmt: skip


def test_every_registered_kind_is_read_by_a_reader_or_listed_as_not_described() -> None:
    assert set(KINDS) - COVERED_KINDS - set(NOT_DESCRIBED) == set()
    assert len({reader.name for reader in READERS}) == len(READERS)


def test_text_and_json_goldens() -> None:
    description = describe(BOOKS, resources())
    live = live_state(LIVE_DUMPS, BOOKS.instances, BOOKS.services, NS)
    golden("describe.text.txt", render_text(description, live))
    golden("describe.json", json.dumps(document(description, live), indent=2) + "\n")


def _findings(workload: Workload, text: str = RESOURCES) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for view in describe(workload, resources(text)).views:
        for f in view.findings:
            out.setdefault(f.aspect, []).append((f.subject, f.setting, f.origin.ref))
    return out


def test_where_each_setting_comes_from() -> None:
    found = _findings(BOOKS)
    profile = "ServiceProfile/books.booksapp.svc.cluster.local"
    assert ("GET /books/{id}", "300ms", profile) in found["timeout"]
    assert ("POST /books", "10s (a route without timeout)", "default") in found["timeout"]
    assert found["retries"][0][2] == profile and found["retries"][1][2] == "default"
    assert found["retry budget"] == [("books", "10% of the requests + 5/s over 20s", profile)]
    assert {(s, o) for s, _, o in found["split"]} == {("apex books", "TrafficSplit/books-canary"),
                                                      ("backend of authors", "TrafficSplit/authors-move")}  # fmt: skip
    assert [o for _, _, o in found["fault"]] == ["FaultInjection/books-faults"]  # not webapp's
    assert found["failure accrual"][0][2] == profile
    assert [(s, o) for s, _, o in found["access"]] == [
        ("sa webapp", "TrafficTarget/books-readers"), ("sa traffic.load", "TrafficTarget/books-readers"),
        ("every other client", "default")]  # fmt: skip
    assert [s for s, _, _ in found["ingress"]] == ["books.example.com/api"]


def test_without_resources_everything_is_a_default() -> None:
    found = _findings(BOOKS, "")
    assert {o for rows in found.values() for _, _, o in rows} == {"default"}
    assert found["access"] == [("every client", "admitted: no TrafficTarget selects service account books", "default")]
    assert "no ServiceProfile" in found["route"][0][1]


POLICY_RESOURCES = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp}
spec:
  loadBalancer: {policy: session-affinity, affinity: {cookie: books-session, ttl: 2h}, weights: {books-0: 3}}
  failureAccrual: {successRate: {threshold: 0.8, window: 30s, minRequests: 20}}
---
apiVersion: meshctl.io/v1alpha1
kind: Egress
metadata: {name: payments, namespace: booksapp}
spec: {hosts: [api.payments.example], ports: [{number: 80}], timeout: 2s, isRetryable: true}
---
apiVersion: meshctl.io/v1alpha1
kind: Egress
metadata: {name: elsewhere, namespace: other}
spec: {hosts: [other.example], ports: [{number: 80}]}
"""


def test_balancer_success_rate_accrual_and_egress_with_their_origins() -> None:
    found = _findings(BOOKS, POLICY_RESOURCES)
    profile = "ServiceProfile/books.booksapp.svc.cluster.local"
    balancer = "session-affinity, on cookie books-session (set for 2h), weights books-0 3"
    assert found["balancer"] == [("endpoints", balancer, profile)]
    assert found["failure accrual"] == [("endpoints", "ejected after a success rate under 0.8 over 30s (from 20 "
                                         "requests), for 1s doubling up to 1m, then probed", profile)]  # fmt: skip
    assert found["egress"] == [("payments", "may reach api.payments.example:80 (timeout 2s, retried)",
                                "Egress/payments")]  # not the other namespace's  # fmt: skip
    assert _findings(BOOKS)["balancer"] == [("endpoints", "peak-EWMA, power of two choices", "default")]


def test_live_state_names_ejections_and_unreadable_proxies() -> None:
    live = live_state(LIVE_DUMPS, BOOKS.instances, BOOKS.services, NS)
    assert [(v.client, v.pod, v.ejected_for_s) for v in live.ejected] == [("webapp-0", "books-1", 3.5)]
    assert live.unreachable == {"webapp-1": "connection refused"}
    assert live.endpoints == {AUTHORITY: tuple(ENDPOINTS)} and live.endpoints_from == "webapp-0"
    assert [s.pod for s in live.instances] == ["books-0", "books-1"]


@pytest.mark.parametrize("service", ["books-v2", "ratings"])
def test_other_services_get_only_what_names_them(service: str) -> None:
    workload = Workload(f"svc/{service}", NS, (service,), (service,), ())
    found = _findings(workload)
    assert "fault" not in found and "ingress" not in found
    assert ("split" in found) == (service == "books-v2")
