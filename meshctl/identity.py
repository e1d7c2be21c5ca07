"""Workload identity names, shared by the control plane, the proxy and the CLI."""

from __future__ import annotations

import re

TRUST_DOMAIN = "cluster.local"
IDENTITY_INFIX = "serviceaccount.identity.meshctl"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def is_dns_label(value: str) -> bool:
    return bool(_DNS_LABEL.match(value))


def workload_identity(service_account: str, namespace: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """`<sa>.<ns>.serviceaccount.identity.meshctl.<trust-domain>`, the name in every proxy certificate."""
    for part, what in ((service_account, "service account"), (namespace, "namespace")):
        if not is_dns_label(part):
            raise ValueError(f"{what} {part!r} is not a DNS label")
    return f"{service_account}.{namespace}.{IDENTITY_INFIX}.{trust_domain}"


def parse_identity(identity: str, trust_domain: str = TRUST_DOMAIN) -> tuple[str, str]:
    """Return (service_account, namespace) of a workload identity, or raise ValueError."""
    suffix = f".{IDENTITY_INFIX}.{trust_domain}"
    if not identity.endswith(suffix):
        raise ValueError(f"{identity!r} is not a workload identity of trust domain {trust_domain!r}")
    head = identity[: -len(suffix)]
    sa, _, ns = head.partition(".")
    if not (is_dns_label(sa) and is_dns_label(ns)):
        raise ValueError(f"{identity!r} is not a workload identity")
    return sa, ns


def control_plane_identity(namespace: str = "meshctl-system", trust_domain: str = TRUST_DOMAIN) -> str:
    return workload_identity("meshctl-control", namespace, trust_domain)


def service_fqdn(name: str, namespace: str, cluster_domain: str = TRUST_DOMAIN) -> str:
    return f"{name}.{namespace}.svc.{cluster_domain}"
