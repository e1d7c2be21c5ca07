"""The address plan: one loopback IP per "pod", like a cluster network, inside a configurable subnet.

<net>.0.2   control plane   gRPC API 8086, admin 9996
<net>.0.3   Prometheus      9090
<net>.0.4   ingress proxy   8080 (ingress listener), admin 4191, tap 4190
<net>.0.5   traffic generator (source address of its requests)
<net>.n.m   instance m (1-based) of deployment n (1-based): app port, proxy 4143 / 4140 / 4191 / tap 4190
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from meshctl.errors import UsageError

DEFAULT_SUBNET = "127.77.0.0/16"

CONTROL_API_PORT = 8086
CONTROL_ADMIN_PORT = 9996
PROMETHEUS_PORT = 9090
INGRESS_PORT = 8080
PROXY_INBOUND_PORT = 4143
PROXY_OUTBOUND_PORT = 4140
PROXY_ADMIN_PORT = 4191
PROXY_TAP_PORT = 4190

_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
MAX_DEPLOYMENTS = 254
MAX_REPLICAS = 254


def hostport(host: str, port: int) -> str:
    return f"{host}:{port}"


def split_hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


@dataclass(frozen=True)
class AddressPlan:
    """Addresses of every component, derived from one subnet of 127.0.0.0/8."""

    network: ipaddress.IPv4Network

    @classmethod
    def parse(cls, subnet: str) -> AddressPlan:
        try:
            network = ipaddress.IPv4Network(subnet.strip(), strict=True)
        except ValueError as exc:
            raise UsageError(
                f"invalid subnet {subnet!r}: {exc}", hint="give a loopback network such as 127.77.0.0/16"
            ) from None
        if not network.subnet_of(_LOOPBACK):
            raise UsageError(
                f"subnet {subnet} is not on loopback",
                hint="the local mesh binds loopback only: use a subnet of 127.0.0.0/8 such as 127.77.0.0/16",
            )
        if network.prefixlen > 16:
            raise UsageError(f"subnet {subnet} is too small", hint="use a /16 (or larger) subnet of 127.0.0.0/8")
        return cls(network)

    def _ip(self, third: int, fourth: int) -> str:
        return str(self.network.network_address + (third << 8) + fourth)

    @property
    def subnet(self) -> str:
        return str(self.network)

    @property
    def control_ip(self) -> str:
        return self._ip(0, 2)

    @property
    def control_api(self) -> str:
        return hostport(self.control_ip, CONTROL_API_PORT)

    @property
    def control_admin(self) -> str:
        return hostport(self.control_ip, CONTROL_ADMIN_PORT)

    @property
    def prometheus(self) -> str:
        return hostport(self._ip(0, 3), PROMETHEUS_PORT)

    @property
    def ingress_ip(self) -> str:
        return self._ip(0, 4)

    @property
    def ingress(self) -> str:
        return hostport(self.ingress_ip, INGRESS_PORT)

    @property
    def ingress_admin(self) -> str:
        return hostport(self.ingress_ip, PROXY_ADMIN_PORT)

    @property
    def traffic_ip(self) -> str:
        return self._ip(0, 5)

    def instance_ip(self, deployment_index: int, replica: int) -> str:
        """IP of replica `replica` (0-based) of the `deployment_index`-th deployment (0-based)."""
        if not 0 <= deployment_index < MAX_DEPLOYMENTS:
            raise ValueError(f"deployment index {deployment_index} out of range")
        if not 0 <= replica < MAX_REPLICAS:
            raise ValueError(f"replica {replica} out of range")
        return self._ip(deployment_index + 1, replica + 1)
