from __future__ import annotations

import pytest

from meshctl.identity import control_plane_identity, parse_identity, service_fqdn, workload_identity


def test_identity_round_trip() -> None:
    name = workload_identity("books", "booksapp")
    assert name == "books.booksapp.serviceaccount.identity.meshctl.cluster.local"
    assert parse_identity(name) == ("books", "booksapp")


@pytest.mark.parametrize(
    "bad",
    ["books.booksapp.svc.cluster.local", "x.serviceaccount.identity.meshctl.cluster.local", "", "a.b.c"],
)
def test_parse_identity_refuses_other_names(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_identity(bad)


def test_workload_identity_refuses_non_dns_labels() -> None:
    with pytest.raises(ValueError):
        workload_identity("Books", "booksapp")


def test_control_plane_and_service_names() -> None:
    assert control_plane_identity().startswith("meshctl-control.meshctl-system.")
    assert service_fqdn("books", "booksapp") == "books.booksapp.svc.cluster.local"
