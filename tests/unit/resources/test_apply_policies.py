"""`meshctl apply` with the policy kinds: all of them stored in one go, and a field the proxy would not
apply (SMI header matches, per-route split matches) refused with its path before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.resources import ResourceError
from tests.unit.resources.test_apply_cli import _run

POLICIES = """\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp}
spec:
  routes:
  - {name: GET /books, condition: {method: GET, pathRegex: /books}, isRetryable: true, timeout: 1s}
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
  failureAccrual: {consecutiveFailures: 5, minPenalty: 1s, maxPenalty: 30s}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: books-canary, namespace: booksapp}
spec:
  service: books
  backends: [{service: books-v1, weight: 90}, {service: books-v2, weight: 10}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: books-routes, namespace: booksapp}
spec:
  matches: [{name: read, methods: [GET], pathRegex: '/books(/.*)?'}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: books-readers, namespace: booksapp}
spec:
  destination: {kind: ServiceAccount, name: books}
  rules: [{kind: HTTPRouteGroup, name: books-routes, matches: [read]}]
  sources: [{kind: ServiceAccount, name: webapp}]
---
apiVersion: meshctl.io/v1alpha1
kind: FaultInjection
metadata: {name: books-faults, namespace: booksapp}
spec:
  service: books
  routes: [GET /books]
  abort: {percent: 10, httpStatus: 503}
  delay: {percent: 5, fixedDelay: 200ms}
"""


def test_every_policy_kind_is_stored(tmp_path: Path) -> None:
    source = tmp_path / "policies.yaml"
    source.write_text(POLICIES)
    home = tmp_path / "home"
    assert _run(home, "-f", str(source)).splitlines() == [
        "serviceprofile/books.booksapp.svc.cluster.local created",
        "trafficsplit/books-canary created",
        "httproutegroup/books-routes created",
        "traffictarget/books-readers created",
        "faultinjection/books-faults created",
    ]
    stored = sorted(p.name for p in (home / "config").iterdir())
    assert "trafficsplit-booksapp-books-canary.yaml" in stored and len(stored) == 5


def test_fields_the_proxy_would_not_apply_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "policies.yaml"
    refused = POLICIES.replace("matches: [{name: read,", "matches: [{headers: {x-user: admin}, name: read,")
    source.write_text(refused.replace("  service: books\n  backends", "  service: books\n  matches: []\n  backends"))
    home = tmp_path / "home"
    with pytest.raises(ResourceError) as caught:
        _run(home, "-f", str(source))
    text = str(caught.value) + " ".join(str(p) for p in caught.value.problems)
    assert "spec.matches[0].headers: not supported" in text and "spec.matches: not supported" in text
    assert not (home / "config").exists()
