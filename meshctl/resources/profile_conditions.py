"""The conditions of a ServiceProfile's routes: which requests a route takes, which responses its classes
describe. Types, parsing and the document shape, as service_profile.py uses them for its routes:

    condition: {method: GET, pathRegex: '/books/\\d+'}                              # a request's
    condition: {all: [{status: {min: 500}}, {not: {status: {min: 504, max: 504}}}]}  # a response's

Fields set together must all hold; `all`, `any` and `not` nest (to MAX_CONDITION_DEPTH). Path regexes are
RE2, as Linkerd's and Envoy's, and checked here so the proxy only ever compiles valid ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from meshctl.resources.fields import Problem, child, describe, integer, item, known_keys, mapping, sequence, string
from meshctl.resources.pathregex import compile_path_regex
from meshctl.resources.profile_schema import HTTP_TOKEN_PATTERN

M = TypeVar("M")  # a parsed condition: RequestMatch or ResponseMatch

_RE2_HINT = "RE2 syntax, as Linkerd and Envoy: no backreferences or lookarounds"
_HTTP_TOKEN = re.compile(HTTP_TOKEN_PATTERN)
# all/any/not nest; a YAML alias can make a condition contain itself, so depth is capped
MAX_CONDITION_DEPTH = 16


@dataclass(frozen=True, slots=True)
class RequestMatch:
    """Fields set together must all hold (Linkerd semantics)."""

    method: str | None = None
    path_regex: str | None = None
    all_of: tuple[RequestMatch, ...] | None = None
    any_of: tuple[RequestMatch, ...] | None = None
    not_: RequestMatch | None = None


@dataclass(frozen=True, slots=True)
class StatusRange:
    min: int = 100
    max: int = 599


@dataclass(frozen=True, slots=True)
class ResponseMatch:
    status: StatusRange | None = None
    all_of: tuple[ResponseMatch, ...] | None = None
    any_of: tuple[ResponseMatch, ...] | None = None
    not_: ResponseMatch | None = None


# --- parsing ----------------------------------------------------------------------------------------


def _too_deep(depth: int, path: str, problems: list[Problem]) -> bool:
    if depth <= MAX_CONDITION_DEPTH:
        return False
    problems.append(Problem(path, f"conditions nested more than {MAX_CONDITION_DEPTH} deep (or containing themselves)"))
    return True


def request_match(value: object, path: str, problems: list[Problem], depth: int = 0) -> RequestMatch | None:
    if _too_deep(depth, path, problems):
        return None
    node = mapping(value, path, problems)
    if node is None:
        return None
    fields = ("method", "pathRegex", "all", "any", "not")
    known_keys(node, path, problems, fields)  # an unknown key alone is reported once, as unknown
    if not any(node.get(key) is not None for key in fields) and set(node) <= set(fields):
        problems.append(Problem(path, "expected at least one of method, pathRegex, all, any, not"))
        return None
    before = len(problems)
    method = None
    if node.get("method") is not None:
        method = string(node["method"], child(path, "method"), problems, "an HTTP method such as GET")
        if method is not None and not _HTTP_TOKEN.match(method):
            problems.append(
                Problem(child(path, "method"), f"expected an HTTP method such as GET, got {describe(method)}")
            )
    path_regex = None
    if node.get("pathRegex") is not None:
        path_regex = _regex(node["pathRegex"], child(path, "pathRegex"), problems)
    all_of = _conditions(node.get("all"), child(path, "all"), problems, depth, request_match)
    any_of = _conditions(node.get("any"), child(path, "any"), problems, depth, request_match)
    negated = None
    if node.get("not") is not None:
        negated = request_match(node["not"], child(path, "not"), problems, depth + 1)
    if len(problems) > before:
        return None
    return RequestMatch(method, path_regex, all_of, any_of, negated)


def _conditions(
    value: object, path: str, problems: list[Problem], depth: int,
    parse: Callable[[object, str, list[Problem], int], M | None],
) -> tuple[M, ...] | None:
    """An `all` or `any` list: each entry parsed one level deeper by `parse` (request_match or response_match)."""
    if value is None:
        return None
    raw = sequence(value, path, problems, "a non-empty list of conditions")
    if raw is None:
        return None
    if not raw:
        problems.append(Problem(path, "expected a non-empty list of conditions, got an empty list"))
    parsed = [parse(entry, item(path, index), problems, depth + 1) for index, entry in enumerate(raw)]
    return tuple(match for match in parsed if match is not None)


def _regex(value: object, path: str, problems: list[Problem]) -> str | None:
    text = string(value, path, problems, "a regular expression matched against the whole path")
    if text is None:
        return None
    try:
        compile_path_regex(text)
    except ValueError as exc:
        problems.append(Problem(path, f"invalid regular expression {describe(text)}: {exc} ({_RE2_HINT})"))
        return None
    return text


def response_match(value: object, path: str, problems: list[Problem], depth: int = 0) -> ResponseMatch | None:
    if _too_deep(depth, path, problems):
        return None
    node = mapping(value, path, problems)
    if node is None:
        return None
    fields = ("status", "all", "any", "not")
    known_keys(node, path, problems, fields)
    if not any(node.get(key) is not None for key in fields) and set(node) <= set(fields):
        problems.append(Problem(path, "expected at least one of status, all, any, not"))
        return None
    before = len(problems)
    status = None
    if node.get("status") is not None:
        status = _status_range(node["status"], child(path, "status"), problems)
    all_of = _conditions(node.get("all"), child(path, "all"), problems, depth, response_match)
    any_of = _conditions(node.get("any"), child(path, "any"), problems, depth, response_match)
    negated = None
    if node.get("not") is not None:
        negated = response_match(node["not"], child(path, "not"), problems, depth + 1)
    if len(problems) > before:
        return None
    return ResponseMatch(status, all_of, any_of, negated)


def _status_range(value: object, path: str, problems: list[Problem]) -> StatusRange | None:
    node = mapping(value, path, problems, "a mapping with min and/or max")
    if node is None:
        return None
    known_keys(node, path, problems, ("min", "max"))
    if node.get("min") is None and node.get("max") is None:
        problems.append(Problem(path, "expected min and/or max"))
        return None
    low = (
        100 if node.get("min") is None else integer(node["min"], child(path, "min"), problems, minimum=100, maximum=599)
    )
    high = (
        599 if node.get("max") is None else integer(node["max"], child(path, "max"), problems, minimum=100, maximum=599)
    )
    if low is None or high is None:
        return None
    if low > high:
        problems.append(Problem(path, f"expected min <= max, got min {low} and max {high}"))
        return None
    return StatusRange(low, high)


# --- back to the document shape ---------------------------------------------------------------------


def request_dict(match: RequestMatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if match.method is not None:
        out["method"] = match.method
    if match.path_regex is not None:
        out["pathRegex"] = match.path_regex
    if match.all_of is not None:
        out["all"] = [request_dict(m) for m in match.all_of]
    if match.any_of is not None:
        out["any"] = [request_dict(m) for m in match.any_of]
    if match.not_ is not None:
        out["not"] = request_dict(match.not_)
    return out


def response_dict(match: ResponseMatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if match.status is not None:
        out["status"] = {"min": match.status.min, "max": match.status.max}
    if match.all_of is not None:
        out["all"] = [response_dict(m) for m in match.all_of]
    if match.any_of is not None:
        out["any"] = [response_dict(m) for m in match.any_of]
    if match.not_ is not None:
        out["not"] = response_dict(match.not_)
    return out
