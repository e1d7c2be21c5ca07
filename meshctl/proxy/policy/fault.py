"""Fault injection: abort or delay a share of a destination's requests (FaultInjection resources).

Compiled from the snapshot onto the Destination it names; the stack asks `decide(route)` once per
request to that destination only (every other request pays one attribute check). An abort becomes
the plan's failure, answered before any endpoint is chosen, with the resource's status and the reason
"fault injected"; a delay is the plan's `delay_s`, which each protocol waits (a timer, no task) before
it connects. The request's timeouts run during the delay, as they would for a slow network.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshctl.api import mesh_pb2
from meshctl.proxy.errors import FaultInjected
from meshctl.resources.fields import parse_duration

if TYPE_CHECKING:
    from meshctl.proxy.policy.resolve import Destination

log = logging.getLogger("meshctl.proxy.policy.fault")


class Fault:
    __slots__ = ("name", "routes", "abort_p", "abort", "delay_p", "delay_s", "_random")

    def __init__(self, name: str, spec: dict[str, object], rng: random.Random | None = None) -> None:
        self.name = name  # "<namespace>/<name>" of the FaultInjection
        routes = spec.get("routes")
        self.routes = frozenset(str(r) for r in routes) if isinstance(routes, list) else None
        abort = spec.get("abort")
        self.abort_p = 0.0
        self.abort: FaultInjected | None = None
        if isinstance(abort, dict):
            self.abort_p = float(abort["percent"]) / 100.0
            self.abort = FaultInjected(f"{name} aborted the request", int(abort.get("httpStatus", 503)),
                                       int(abort.get("grpcStatus", 14)))  # fmt: skip
        delay = spec.get("delay")
        self.delay_p, self.delay_s = 0.0, 0.0
        if isinstance(delay, dict):
            self.delay_p = float(delay["percent"]) / 100.0
            self.delay_s = parse_duration(str(delay["fixedDelay"]))
        self._random = (rng or random.Random()).random  # sampling needs no cryptographic randomness

    def decide(self, route: str) -> tuple[FaultInjected | None, float]:
        """(the abort to answer with, or None; seconds to delay) for one request on `route`."""
        if self.routes is not None and route not in self.routes:
            return None, 0.0
        if self.abort is not None and self._random() < self.abort_p:
            return self.abort, 0.0
        if self.delay_s and self._random() < self.delay_p:
            return None, self.delay_s
        return None, 0.0

    def to_json(self) -> dict[str, object]:
        return {"faultInjection": self.name, "routes": sorted(self.routes) if self.routes is not None else None,
                "abortPercent": self.abort_p * 100.0, "delayPercent": self.delay_p * 100.0,
                "delaySeconds": self.delay_s}  # fmt: skip


def with_faults(destinations: list[Destination], resources: Iterable[mesh_pb2.Resource],
                namespace: str) -> list[Destination]:  # fmt: skip
    """The destinations with every valid FaultInjection attached to the service it names."""
    by_name = {(d.service, d.namespace): d for d in destinations}
    for resource in resources:
        if resource.kind != "FaultInjection":
            continue
        ns = resource.namespace or namespace
        where = f"FaultInjection {ns}/{resource.name}"
        try:
            spec = json.loads(resource.spec_json)
            key = (str(spec["service"]), ns)
            fault = Fault(f"{ns}/{resource.name}", spec)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s ignored: %s", where, exc)
            continue
        dest = by_name.get(key)
        if dest is None:
            log.warning("%s: no service %s in %s", where, key[0], ns)
            continue
        by_name[key] = dataclasses.replace(dest, fault=fault)
    return list(by_name.values())
