"""CompiledProfile: which route a request is (Linkerd semantics) and how its responses are classified."""

from __future__ import annotations

import json

import pytest

from meshctl.proxy.policy.route import DEFAULT, CompiledProfile, compile_profile
from meshctl.resources import parse_text

SPEC = {
    "routes": [
        {"name": "GET /books", "condition": {"method": "GET", "pathRegex": "/books"}},
        {
            "name": "GET /books/{id}.json",
            "condition": {"method": "GET", "pathRegex": r"/books/\d+\.json"},
            "responseClasses": [
                {"condition": {"status": {"min": 404, "max": 404}}, "isFailure": False},
                {"condition": {"status": {"min": 400, "max": 499}}, "isFailure": True},
            ],
            "timeout": "300ms",
            "isRetryable": True,
        },
        {"name": "writes", "condition": {"any": [{"method": "POST"}, {"method": "PUT"}]}},
        {
            "name": "not admin",
            "condition": {"all": [{"method": "DELETE"}, {"not": {"pathRegex": "/admin/.*"}}]},
            "responseClasses": [{"condition": {"not": {"status": {"min": 200, "max": 299}}}, "isFailure": True}],
        },
    ],
    "retryBudget": {"retryRatio": 0.5, "minRetriesPerSecond": 3, "ttl": "2s"},
}


@pytest.fixture(scope="module")
def profile() -> CompiledProfile:
    return compile_profile(SPEC)


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/books", "GET /books"),
        ("GET", "/books?page=2", "GET /books"),  # the query is not part of the path
        ("GET", "/books/", "[DEFAULT]"),  # anchored: the whole path must match
        ("GET", "/x/books", "[DEFAULT]"),
        ("GET", "/books/12.json", "GET /books/{id}.json"),
        ("GET", "/books/12.json/more", "[DEFAULT]"),
        ("get", "/books", "[DEFAULT]"),  # methods are case-sensitive
        ("POST", "/anything", "writes"),
        ("PUT", "/", "writes"),
        ("DELETE", "/books/1", "not admin"),
        ("DELETE", "/admin/users", "[DEFAULT]"),
        ("PATCH", "/books", "[DEFAULT]"),
    ],
)
def test_route_for(profile: CompiledProfile, method: str, path: str, route: str) -> None:
    assert profile.route_for(method, path) == route
    assert profile.route_for(method, path) == route  # again, from the cache


def test_first_matching_route_wins() -> None:
    spec = {
        "routes": [
            {"name": "a", "condition": {"pathRegex": "/.*"}},
            {"name": "b", "condition": {"method": "GET"}},
        ]
    }
    assert compile_profile(spec).route_for("GET", "/x") == "a"


def test_route_flags(profile: CompiledProfile) -> None:
    route = profile.match("GET", "/books/1.json")
    assert (route.timeout_s, route.is_retryable) == (0.3, True)
    plain = profile.match("GET", "/books")
    assert (plain.timeout_s, plain.is_retryable) == (10.0, False)  # Linkerd's default route timeout
    assert profile.match("GET", "/nope") is DEFAULT
    assert (DEFAULT.timeout_s, DEFAULT.is_retryable) == (None, False)


def test_response_classes_first_match_then_5xx(profile: CompiledProfile) -> None:
    route = profile.match("GET", "/books/1.json")
    assert route.is_failure(404) is False  # the first class that matches decides
    assert route.is_failure(403) is True
    assert route.is_failure(500) is True  # no class: 5xx is a failure
    assert route.is_failure(200) is False
    negated = profile.match("DELETE", "/books/1")
    assert negated.is_failure(302) is True and negated.is_failure(204) is False


def test_grpc_status_decides_when_no_class_matches(profile: CompiledProfile) -> None:
    assert DEFAULT.is_failure(200, grpc_status=14) is True
    assert DEFAULT.is_failure(200, grpc_status=0) is False
    assert profile.match("GET", "/books/1.json").is_failure(404, grpc_status=5) is False


def test_retry_budget_from_spec_or_default(profile: CompiledProfile) -> None:
    assert (profile.retry_budget.retry_ratio, profile.retry_budget.ttl_s) == (0.5, 2.0)
    default = compile_profile({"routes": []}).retry_budget
    assert (default.retry_ratio, default.min_retries_per_second, default.ttl_s) == (0.2, 10, 10.0)


def test_compiles_from_snapshot_spec_json_and_from_the_model() -> None:
    [resource] = parse_text(
        "apiVersion: meshctl.io/v1alpha1\nkind: ServiceProfile\n"
        "metadata: {name: books.booksapp.svc.cluster.local}\n"
        "spec: {routes: [{name: r, condition: {pathRegex: '/r'}}]}\n"
    )
    assert compile_profile(resource.spec_json()).route_for("GET", "/r") == "r"
    assert compile_profile(resource.spec).route_for("GET", "/r") == "r"  # type: ignore[arg-type]


def test_invalid_spec_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"spec.routes\[0\].condition"):
        compile_profile(json.dumps({"routes": [{"name": "x", "condition": {}}]}))


def test_cache_stays_bounded(profile: CompiledProfile) -> None:
    for i in range(3000):
        assert profile.route_for("GET", f"/books/{i}.json") == "GET /books/{id}.json"
    assert len(profile._cache) <= 1024
