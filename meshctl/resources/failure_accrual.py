"""A ServiceProfile's `failureAccrual`: when an endpoint of the service is taken out of balancing.

    spec:
      failureAccrual: {consecutiveFailures: 5, minPenalty: 1s, maxPenalty: 1m}
      # or, one of the two:
      failureAccrual: {successRate: {threshold: 0.8, window: 30s, minRequests: 20}}

After `consecutiveFailures` failed responses in a row (as the routes classify them, or no connection),
or once its success rate over the last `window` falls below `threshold` with at least `minRequests`
outcomes in that window, an endpoint is ejected for `minPenalty`, doubling with every ejection in a row
up to `maxPenalty`; then one request probes it. Success rate catches an endpoint that fails often but
never many times in a row. Without the field nothing is ejected for its responses (an endpoint that
cannot be reached at all is still avoided by the balancer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.resources import openapi
from meshctl.resources.fields import Problem, child, duration, integer, known_keys, mapping, number


@dataclass(frozen=True, slots=True)
class SuccessRate:
    threshold: float  # eject below this share of successes
    window: str  # as written
    window_s: float
    min_requests: int  # outcomes in the window before the rate counts


@dataclass(frozen=True, slots=True)
class FailureAccrual:
    consecutive_failures: int | None  # None: success_rate decides
    min_penalty: str = "1s"  # as written, kept for round trips
    min_penalty_s: float = 1.0
    max_penalty: str = "1m"
    max_penalty_s: float = 60.0
    success_rate: SuccessRate | None = None


SUCCESS_RATE_SCHEMA = openapi.obj(
    "Eject an endpoint whose success rate over the window falls below the threshold.",
    {
        "threshold": openapi.number("The lowest acceptable share of successful responses, 0 to 1.", minimum=0,
                                    maximum=1, example=0.8),
        "window": openapi.duration("How far back outcomes count.", example="30s"),
        "minRequests": openapi.integer("Outcomes needed in the window before the rate can eject.", minimum=1,
                                       maximum=100000, example=20),
    },
    required=("threshold", "window", "minRequests"),
)
# The sub-schema of ServiceProfile's spec.failureAccrual.
SCHEMA = openapi.obj(
    "When an endpoint of the service is taken out of balancing for failing: failures in a row, or a low "
    "success rate. Without it, no endpoint is ejected for its responses.",
    {
        "consecutiveFailures": openapi.integer(
            "Failures in a row before ejection. Failures are what the routes' responseClasses classify so, or no "
            "connection.", minimum=1, maximum=1000, example=5),
        "successRate": SUCCESS_RATE_SCHEMA,
        "minPenalty": openapi.duration("The first ejection's length (default 1s); it doubles with every ejection "
                                       "in a row.", example="1s"),
        "maxPenalty": openapi.duration("The longest ejection (default 1m).", example="1m"),
    },
    one_of=(("consecutiveFailures",), ("successRate",)),
)  # fmt: skip
FAILURE_ACCRUAL_SCHEMA = SCHEMA


def parse(value: object, path: str, problems: list[Problem]) -> FailureAccrual | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("consecutiveFailures", "successRate", "minPenalty", "maxPenalty"))
    before = len(problems)
    consecutive = rate = None
    if (node.get("consecutiveFailures") is None) == (node.get("successRate") is None):
        problems.append(Problem(path, "expected one of consecutiveFailures (failures in a row before ejection) "
                                      "or successRate"))  # fmt: skip
    elif node.get("consecutiveFailures") is not None:
        consecutive = integer(node["consecutiveFailures"], child(path, "consecutiveFailures"), problems,
                              minimum=1, maximum=1000)  # fmt: skip
    else:
        rate = _success_rate(node["successRate"], child(path, "successRate"), problems)
    low, low_s = _penalty(node, path, "minPenalty", "1s", 1.0, problems)
    high, high_s = _penalty(node, path, "maxPenalty", "1m", 60.0, problems)
    if len(problems) > before or (consecutive is None and rate is None):
        return None
    if low_s > high_s:
        problems.append(Problem(child(path, "minPenalty"), f"expected at most maxPenalty ({high}), got {low}"))
        return None
    return FailureAccrual(consecutive, low, low_s, high, high_s, rate)


def _success_rate(value: object, path: str, problems: list[Problem]) -> SuccessRate | None:
    node = mapping(value, path, problems, "a mapping with threshold, window and minRequests")
    if node is None:
        return None
    keys = ("threshold", "window", "minRequests")
    known_keys(node, path, problems, keys)
    missing = [key for key in keys if node.get(key) is None]
    for key in missing:
        problems.append(Problem(child(path, key), "missing"))
    if missing:
        return None
    threshold = number(node["threshold"], child(path, "threshold"), problems)
    if threshold is not None and threshold > 1:
        problems.append(Problem(child(path, "threshold"), f"expected a share from 0 to 1, got {threshold:g}"))
        threshold = None
    window_s = duration(node["window"], child(path, "window"), problems)
    least = integer(node["minRequests"], child(path, "minRequests"), problems, minimum=1, maximum=100_000)
    if threshold is None or window_s is None or least is None:
        return None
    return SuccessRate(threshold, str(node["window"]), window_s, least)


def _penalty(node: dict[str, object], path: str, key: str, default: str, default_s: float,
             problems: list[Problem]) -> tuple[str, float]:  # fmt: skip
    if node.get(key) is None:
        return default, default_s
    seconds = duration(node[key], child(path, key), problems)
    return str(node[key]), seconds or default_s


def to_dict(accrual: FailureAccrual) -> dict[str, Any]:
    out: dict[str, Any] = {"minPenalty": accrual.min_penalty, "maxPenalty": accrual.max_penalty}
    if accrual.consecutive_failures is not None:
        out["consecutiveFailures"] = accrual.consecutive_failures
    rate = accrual.success_rate
    if rate is not None:
        out["successRate"] = {"threshold": rate.threshold, "window": rate.window, "minRequests": rate.min_requests}
    return out
