"""ServiceProfile validation: good documents parse; a mistake names file, document, field and expectation."""

from __future__ import annotations

import json
import textwrap

import pytest

from meshctl.resources import API_VERSION, KINDS, ResourceError, parse_text
from meshctl.resources.service_profile import ServiceProfileSpec

ALL_KINDS = ", ".join(sorted(KINDS))  # every registered kind, as the error lists them

GOOD = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata:
  name: books.booksapp.svc.cluster.local
  namespace: booksapp
spec:
  routes:
  - name: GET /books/{id}.json
    condition:
      method: GET
      pathRegex: /books/\\d+\\.json
    responseClasses:
    - condition:
        status: {min: 500, max: 599}
      isFailure: true
    timeout: 300ms
    isRetryable: true
  - name: writes
    condition:
      any:
      - method: POST
      - all: [{method: PUT}, {not: {pathRegex: /admin/.*}}]
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
"""

# The ebook's and Linkerd's docs' profiles use linkerd.io/v1alpha2; they apply unchanged.
LINKERD = """\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: authors.booksapp.svc.cluster.local
  namespace: booksapp
  creationTimestamp: null
spec:
  routes:
  - condition:
      method: DELETE
      pathRegex: /authors/[^/]*\\.json
    name: DELETE /authors/{id}.json
"""


def test_good_profile_parses_into_the_model() -> None:
    [resource] = parse_text(GOOD, "books.yaml")
    assert (resource.kind, resource.name, resource.namespace) == (
        "ServiceProfile",
        "books.booksapp.svc.cluster.local",
        "booksapp",
    )
    spec = resource.spec
    assert isinstance(spec, ServiceProfileSpec)
    first, second = spec.routes
    assert (first.name, first.timeout_s, first.is_retryable) == ("GET /books/{id}.json", 0.3, True)
    assert first.response_classes[0].is_failure and first.response_classes[0].condition.status is not None
    assert second.timeout_s == 10.0 and not second.is_retryable  # Linkerd's defaults
    assert spec.retry_budget is not None and spec.retry_budget.ttl_s == 10.0


def test_linkerd_profile_is_accepted_and_normalised() -> None:
    [resource] = parse_text(LINKERD, "authors.yaml")
    assert resource.api_version == API_VERSION
    assert resource.to_document()["apiVersion"] == "meshctl.io/v1alpha1"


def test_spec_round_trips_through_json() -> None:
    [resource] = parse_text(GOOD)
    again = {**resource.to_document(), "spec": json.loads(resource.spec_json())}
    import yaml

    [reparsed] = parse_text(yaml.safe_dump(again))
    assert reparsed.spec == resource.spec


def test_namespace_defaults_to_the_service_namespace() -> None:
    [resource] = parse_text(GOOD.replace("  namespace: booksapp\n", ""))
    assert resource.namespace == "booksapp"


def test_multi_document_and_list() -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [parse_text(LINKERD)[0].to_document()]}
    text = GOOD + "---\n---\n" + json.dumps(listed)
    assert [r.name for r in parse_text(text)] == [
        "books.booksapp.svc.cluster.local",
        "authors.booksapp.svc.cluster.local",
    ]
    assert [r.document for r in parse_text(text)] == [1, 3]


def _error(document: str) -> str:
    with pytest.raises(ResourceError) as caught:
        parse_text(textwrap.dedent(document), "p.yaml")
    return caught.value.message


HEAD = """\
apiVersion: meshctl.io/v1alpha1
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local}
"""

BAD = [
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {method: GET}\n    timeout: fast\n",
        'spec.routes[0].timeout: expected a duration such as "300ms", "1.5s" or "1m30s", got "fast"',
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {method: GET}\n    timeout: 300\n",
        'spec.routes[0].timeout: expected a duration such as "300ms", "1.5s" or "1m30s", got 300',
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {pathregex: /x}\n",
        "spec.routes[0].condition.pathregex: unknown field (did you mean 'pathRegex'?)",
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {}\n",
        "spec.routes[0].condition: expected at least one of method, pathRegex, all, any, not",
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n",
        "spec.routes[0].condition: missing (the request condition of the route)",
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {pathRegex: '(['}\n",
        'spec.routes[0].condition.pathRegex: invalid regular expression "([": missing ]: [ '
        "(RE2 syntax, as Linkerd and Envoy: no backreferences or lookarounds)",
    ),
    (  # Python's re takes it, RE2 does not: the proxies could not run it
        HEAD
        + "spec:\n  routes:\n  - {name: a, condition: {pathRegex: /a}}\n  - {name: b, condition: {pathRegex: /b}}\n"
        + "  - name: x\n    condition: {pathRegex: '/(?=admin)'}\n",
        'spec.routes[2].condition.pathRegex: invalid regular expression "/(?=admin)": invalid perl operator: (?= '
        "(RE2 syntax, as Linkerd and Envoy: no backreferences or lookarounds)",
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {method: 'GET /'}\n",
        'spec.routes[0].condition.method: expected an HTTP method such as GET, got "GET /"',
    ),
    (
        HEAD + "spec:\n  routes:\n  - condition: {method: GET}\n",
        "spec.routes[0].name: missing (the route's name, as metrics and `routes` show it)",
    ),
    (
        HEAD + "spec:\n  routes:\n  - {name: 7, condition: {method: GET}}\n",
        'spec.routes[0].name: expected a route name such as "GET /books/{id}", got 7',
    ),
    (
        HEAD + "spec:\n  routes:\n  - {name: '[DEFAULT]', condition: {method: GET}}\n",
        "spec.routes[0].name: '[DEFAULT]' is reserved for requests that match no route",
    ),
    (
        HEAD + "spec:\n  routes:\n  - {name: a, condition: {method: GET}}\n  - {name: a, condition: {method: X}}",
        "spec.routes[1].name: duplicate route name 'a' (first at index 0)",
    ),
    (
        HEAD
        + "spec:\n  routes:\n  - name: x\n    condition: {method: GET}\n"
        + "    responseClasses:\n    - condition: {status: {min: 599, max: 500}}\n",
        "spec.routes[0].responseClasses[0].condition.status: expected min <= max, got min 599 and max 500",
    ),
    (
        HEAD
        + "spec:\n  routes:\n  - name: x\n    condition: {method: GET}\n"
        + "    responseClasses:\n    - condition: {status: {min: 600}}\n",
        "spec.routes[0].responseClasses[0].condition.status.min: expected an integer from 100 to 599, got 600",
    ),
    (
        HEAD + "spec:\n  routes:\n  - name: x\n    condition: {method: GET}\n    isRetryable: 'sometimes'\n",
        'spec.routes[0].isRetryable: expected true or false, got "sometimes"',
    ),
    (
        HEAD + "spec:\n  retryBudget: {retryRatio: -1, minRetriesPerSecond: 10, ttl: 10s}\n",
        "spec.retryBudget.retryRatio: expected a number >= 0, got -1",
    ),
    (
        HEAD + "spec:\n  retryBudget: {retryRatio: 0.2, ttl: 10s}\n",
        "spec.retryBudget.minRetriesPerSecond: missing (the retries per second allowed whatever the ratio)",
    ),
    (
        "apiVersion: meshctl.io/v1alpha1\nkind: ServiceProfile\nmetadata: {name: books}\nspec: {}\n",
        'metadata.name: expected a service FQDN such as "books.booksapp.svc.cluster.local", got "books"',
    ),
    (
        HEAD.replace("meshctl.io/v1alpha1", "v1") + "spec: {}\n",
        'apiVersion: expected meshctl.io/v1alpha1 or linkerd.io/v1alpha2 for kind ServiceProfile, got "v1"',
    ),
    (
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: x}\nspec: {}\n",
        f'kind: expected one of {ALL_KINDS}, got "TCPRoute"',
    ),
    (
        "apiVersion: v1\nkind: ConfigMap\n",
        f'kind: expected one of {ALL_KINDS}, got "ConfigMap"',
    ),
    (
        "- just\n- a list\n",
        "expected a mapping with apiVersion, kind, metadata and spec, got a list",
    ),
    (
        HEAD + "spec:\n  routes: [\n",
        "invalid YAML at line 6, column 1: did not find expected node content",
    ),
    (
        HEAD + "spec:\n  routes: []\n  dstOverrides: []\n",
        "spec.dstOverrides: unknown field (allowed: failureAccrual, loadBalancer, retryBudget, routes)",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_document_gives_an_exact_message(document: str, message: str) -> None:
    assert _error(document) == "p.yaml: document 1: " + message


def test_every_problem_of_every_document_is_reported() -> None:
    text = HEAD + "spec:\n  routes:\n  - {name: x, condition: {}, timeout: soon}\n---\n" + "kind: Nope\n"
    message = _error(text)
    assert message.splitlines() == [
        "3 problems:",
        "  p.yaml: document 1: spec.routes[0].condition: expected at least one of method, pathRegex, all, any, not",
        "  p.yaml: document 1: spec.routes[0].timeout: "
        'expected a duration such as "300ms", "1.5s" or "1m30s", got "soon"',
        f'  p.yaml: document 2: kind: expected one of {ALL_KINDS}, got "Nope"',
    ]


def test_problems_inside_a_list_name_the_item() -> None:
    listed = json.dumps({"kind": "List", "items": [{"kind": "ServiceProfile", "apiVersion": "meshctl.io/v1alpha1"}]})
    assert _error(listed).splitlines()[1:] == [
        "  p.yaml: document 1: items[0].metadata: missing (a mapping with name and optionally namespace)",
        "  p.yaml: document 1: items[0].spec: missing (the specification of the resource)",
    ]
