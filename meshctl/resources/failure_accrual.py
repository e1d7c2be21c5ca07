"""A ServiceProfile's `failureAccrual`: when an endpoint of the service is taken out of balancing.

    spec:
      failureAccrual: {consecutiveFailures: 5, minPenalty: 1s, maxPenalty: 1m}

After `consecutiveFailures` failed responses in a row (as the routes classify them, or no connection)
an endpoint is ejected for `minPenalty`, doubling with every ejection in a row up to `maxPenalty`;
then one request probes it. Without the field nothing is ejected for its responses (an endpoint that
cannot be reached at all is still avoided by the balancer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.resources import openapi
from meshctl.resources.fields import Problem, child, duration, integer, known_keys, mapping

# The sub-schema of ServiceProfile's spec.failureAccrual.
SCHEMA = openapi.obj(
    "When an endpoint of the service is taken out of balancing for failing. Without it, no endpoint is "
    "ejected for its responses.",
    {
        "consecutiveFailures": openapi.integer(
            "Failures in a row before ejection. Failures are what the routes' responseClasses classify so, or no "
            "connection.", minimum=1, maximum=1000, example=5),
        "minPenalty": openapi.duration("The first ejection's length (default 1s); it doubles with every ejection "
                                       "in a row.", example="1s"),
        "maxPenalty": openapi.duration("The longest ejection (default 1m).", example="1m"),
    },
    required=("consecutiveFailures",),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailureAccrual:
    consecutive_failures: int
    min_penalty: str = "1s"  # as written, kept for round trips
    min_penalty_s: float = 1.0
    max_penalty: str = "1m"
    max_penalty_s: float = 60.0


def parse(value: object, path: str, problems: list[Problem]) -> FailureAccrual | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("consecutiveFailures", "minPenalty", "maxPenalty"))
    before = len(problems)
    if node.get("consecutiveFailures") is None:
        problems.append(Problem(child(path, "consecutiveFailures"), "missing (failures in a row before ejection)"))
        consecutive = None
    else:
        consecutive = integer(node["consecutiveFailures"], child(path, "consecutiveFailures"), problems,
                              minimum=1, maximum=1000)  # fmt: skip
    low, low_s = _penalty(node, path, "minPenalty", "1s", 1.0, problems)
    high, high_s = _penalty(node, path, "maxPenalty", "1m", 60.0, problems)
    if len(problems) > before or consecutive is None:
        return None
    if low_s > high_s:
        problems.append(Problem(child(path, "minPenalty"), f"expected at most maxPenalty ({high}), got {low}"))
        return None
    return FailureAccrual(consecutive, low, low_s, high, high_s)


def _penalty(node: dict[str, object], path: str, key: str, default: str, default_s: float,
             problems: list[Problem]) -> tuple[str, float]:  # fmt: skip
    if node.get(key) is None:
        return default, default_s
    seconds = duration(node[key], child(path, key), problems)
    return str(node[key]), seconds or default_s


def to_dict(accrual: FailureAccrual) -> dict[str, Any]:
    return {"consecutiveFailures": accrual.consecutive_failures, "minPenalty": accrual.min_penalty,
            "maxPenalty": accrual.max_penalty}  # fmt: skip
