"""The address plan: one loopback IP per pod inside a configurable subnet."""

from __future__ import annotations

import pytest

from meshctl.errors import UsageError
from meshctl.platform.local.addresses import AddressPlan, split_hostport


def test_default_plan_matches_the_documented_addresses() -> None:
    plan = AddressPlan.parse("127.77.0.0/16")
    assert plan.control_api == "127.77.0.2:8086"
    assert plan.control_admin == "127.77.0.2:9996"
    assert plan.prometheus == "127.77.0.3:9090"
    assert plan.ingress == "127.77.0.4:8080"
    assert plan.ingress_admin == "127.77.0.4:4191"
    assert plan.traffic_ip == "127.77.0.5"
    assert plan.instance_ip(0, 0) == "127.77.1.1"
    assert plan.instance_ip(2, 1) == "127.77.3.2"


def test_another_subnet_moves_everything() -> None:
    plan = AddressPlan.parse("127.78.0.0/16")
    assert plan.control_api == "127.78.0.2:8086"
    assert plan.instance_ip(3, 0) == "127.78.4.1"


def test_a_larger_subnet_is_accepted() -> None:
    assert AddressPlan.parse("127.0.0.0/8").instance_ip(0, 0) == "127.0.1.1"


@pytest.mark.parametrize(
    ("subnet", "words"),
    [
        ("10.0.0.0/16", "not on loopback"),
        ("127.77.0.0/24", "too small"),
        ("127.77.0.1/16", "invalid subnet"),
        ("banana", "invalid subnet"),
    ],
)
def test_bad_subnets_are_usage_errors(subnet: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        AddressPlan.parse(subnet)
    assert words in caught.value.message
    assert caught.value.hint


def test_instance_indices_are_bounded() -> None:
    plan = AddressPlan.parse("127.77.0.0/16")
    with pytest.raises(ValueError):
        plan.instance_ip(254, 0)
    with pytest.raises(ValueError):
        plan.instance_ip(0, 254)


def test_split_hostport() -> None:
    assert split_hostport("127.77.1.1:4191") == ("127.77.1.1", 4191)
