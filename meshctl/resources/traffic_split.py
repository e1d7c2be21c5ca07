"""TrafficSplit (SMI split.smi-spec.io/v1alpha4): the requests for one service shared among backends.

    apiVersion: split.smi-spec.io/v1alpha4
    kind: TrafficSplit
    metadata: {name: books-canary, namespace: booksapp}
    spec:
      service: books            # the apex: the name clients use
      backends:
      - {service: books-v1, weight: 90}
      - {service: books-v2, weight: 10}

Weights are relative integers (a backend with weight 0 gets nothing, as in a blue-green switch). SMI's
`matches` (per-route splits by HTTPRouteGroup) is refused: the proxy would not apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.identity import is_dns_label
from meshctl.resources import openapi
from meshctl.resources.fields import Problem, child, describe, integer, item, known_keys, mapping, sequence, string

API_VERSION = "split.smi-spec.io/v1alpha4"
# Earlier SMI versions have the same service/backends/weight shape (v1alpha1's quantities excepted).
API_VERSIONS = frozenset({API_VERSION, "split.smi-spec.io/v1alpha3", "split.smi-spec.io/v1alpha2"})
MAX_WEIGHT = 1_000_000

# SMI's `matches` is left out: the proxy would not apply it (the parser says so when it is present).
SPEC_SCHEMA = openapi.obj(
    "The requests for one service (the apex) shared among backend services by weight.",
    {
        "service": openapi.dns_label("The apex: the service name clients use.", "a service name", "books"),
        "backends": openapi.array(
            "The services that get the requests, each in proportion to its weight.",
            openapi.obj(
                "A backend service and its share.",
                {
                    "service": openapi.dns_label("The backend service.", "a service name", "books-v2"),
                    "weight": openapi.integer("Its relative share: 0 gives it nothing, as in a blue-green switch.",
                                              minimum=0, maximum=MAX_WEIGHT, example=10),
                },
                required=("service", "weight"),
            ),
            min_items=1, title="at least one backend",
        ),
    },
    required=("service", "backends"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Backend:
    service: str
    weight: int


@dataclass(frozen=True, slots=True)
class TrafficSplitSpec:
    service: str
    backends: tuple[Backend, ...]


def service_name(value: object, path: str, problems: list[Problem]) -> str | None:
    name = string(value, path, problems, "a service name")
    if name is not None and not is_dns_label(name):
        problems.append(Problem(path, f"expected a service name (a DNS label: a-z, 0-9, -), got {describe(name)}"))
        return None
    return name


def parse_spec(value: object, path: str, problems: list[Problem]) -> TrafficSplitSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    before = len(problems)
    if "matches" in node:
        problems.append(Problem(child(path, "matches"), "not supported: every request of the service is split"))
    known_keys(node, path, problems, ("service", "backends"), ignored=("matches",))
    service = service_name(node.get("service"), child(path, "service"), problems)
    backends: list[Backend] = []
    where = child(path, "backends")
    raw = sequence(node.get("backends"), where, problems, "a list of backends ({service, weight})")
    seen: set[str] = set()
    for index, entry in enumerate(raw or []):
        at = item(where, index)
        backend = mapping(entry, at, problems)
        if backend is None:
            continue
        known_keys(backend, at, problems, ("service", "weight"))
        name = service_name(backend.get("service"), child(at, "service"), problems)
        weight = integer(backend.get("weight"), child(at, "weight"), problems, minimum=0, maximum=MAX_WEIGHT)
        if name is not None and name in seen:
            problems.append(Problem(child(at, "service"), f"duplicate backend {name!r}"))
        if name is not None and weight is not None:
            seen.add(name)
            backends.append(Backend(name, weight))
    if raw is not None and not raw:
        problems.append(Problem(where, "expected at least one backend"))
    elif len(problems) == before and not any(b.weight for b in backends):
        problems.append(Problem(where, "expected a backend with a weight above 0"))
    if len(problems) > before or service is None:
        return None
    return TrafficSplitSpec(service, tuple(backends))


def spec_to_dict(spec: TrafficSplitSpec) -> dict[str, Any]:
    return {"service": spec.service, "backends": [{"service": b.service, "weight": b.weight} for b in spec.backends]}


def check_name(name: str) -> str | None:
    return None if is_dns_label(name) else f"expected a DNS label (a-z, 0-9, -), got {describe(name)}"


def no_default_namespace(name: str) -> str | None:
    return None
