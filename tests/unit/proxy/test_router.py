"""Authority canonicalisation and snapshot conversion."""

from __future__ import annotations

import json

import pytest

from meshctl.api import mesh_pb2
from meshctl.proxy.policy.resolve import Endpoint, Router, router_from_snapshot, split_authority


def snapshot() -> mesh_pb2.Snapshot:
    books = mesh_pb2.Service(
        name="books", namespace="booksapp", port=7000, protocol="http",
        endpoints=[
            mesh_pb2.Endpoint(address="127.77.2.1", port=4143, identity="books.id", pod="books-0", ready=True),
            mesh_pb2.Endpoint(address="127.77.2.2", port=4143, identity="books.id", pod="books-1", ready=False),
        ],
    )  # fmt: skip
    other = mesh_pb2.Service(name="books", namespace="other", port=8080, protocol="grpc")
    profile = mesh_pb2.Resource(
        api_version="linkerd.io/v1alpha2", kind="ServiceProfile", name="books.booksapp.svc.cluster.local",
        namespace="booksapp",
        spec_json=json.dumps({"routes": [{"name": "GET /books/{id}", "condition": {"method": "GET",
                                                                                  "pathRegex": "/books/[^/]+"},
                                          "timeout": "250ms"}]}),
    )  # fmt: skip
    return mesh_pb2.Snapshot(version=7, services=[books, other], resources=[profile])


@pytest.fixture
def router() -> Router:
    return router_from_snapshot(snapshot(), "booksapp")


@pytest.mark.parametrize(
    "authority",
    [
        "books", "books:7000", "books.booksapp", "books.booksapp:7000", "books.booksapp.svc",
        "books.booksapp.svc:7000", "books.booksapp.svc.cluster.local", "books.booksapp.svc.cluster.local:7000",
        "BOOKS.booksapp.svc.cluster.local.:7000",
    ],
)  # fmt: skip
def test_every_spelling_resolves_to_the_canonical_authority(router: Router, authority: str) -> None:
    dest = router.resolve(authority)
    assert dest is not None
    assert dest.authority == "books.booksapp.svc.cluster.local:7000"
    assert (dest.service, dest.namespace, dest.port, dest.protocol) == ("books", "booksapp", 7000, "http")


@pytest.mark.parametrize(
    "authority", ["books:7001", "nope", "books.nope", "books.booksapp.svc.cluster", "books.booksapp.x", ":7000",
                  "books:x", "10.0.0.1:7000", ""],
)  # fmt: skip
def test_unknown_authorities(router: Router, authority: str) -> None:
    assert router.resolve(authority) is None


def test_other_namespace_and_default_port(router: Router) -> None:
    dest = router.resolve("books.other")
    assert dest is not None and dest.authority == "books.other.svc.cluster.local:8080" and dest.protocol == "grpc"


def test_only_ready_endpoints_and_own_service(router: Router) -> None:
    dest = router.resolve("books")
    assert dest is not None
    assert dest.endpoints == (Endpoint("127.77.2.1", 4143, "books.id", "books-0"),)
    assert router.service_of_pod("books-1") is dest  # not ready, still its own service
    assert router.service_of_pod("web-0") is None
    assert router.version == 7


def test_profile_routes(router: Router) -> None:
    dest = router.resolve("books")
    assert dest is not None
    assert dest.route_for("GET", "/books/12") == "GET /books/{id}"
    assert dest.route_for("POST", "/books/12") == "[DEFAULT]"
    assert dest.match("GET", "/books/1").timeout_s == pytest.approx(0.25)
    other = router.resolve("books.other")
    assert other is not None and other.route_for("GET", "/x") == "[DEFAULT]"


def test_split_authority() -> None:
    assert split_authority("Books:80") == ("books", 80)
    assert split_authority("books") == ("books", None)
    assert split_authority("books:") is None
    assert split_authority("[::1]:80") == ("[::1]", 80)


def test_default_namespace_is_the_proxys() -> None:
    dest = router_from_snapshot(snapshot(), "other").resolve("books")
    assert dest is not None and dest.namespace == "other"
