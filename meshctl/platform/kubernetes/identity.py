"""Where the mesh keeps its identity material in the cluster, as the facts the shared identity checks
(MC4001-MC4009, meshctl/health/checks_identity.py) judge: the trust anchors in a ConfigMap, the issuer
in a kubernetes.io/tls Secret.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from meshctl.errors import ConfigError
from meshctl.health.checks_identity import IdentitySource, IssuerMaterial
from meshctl.health.registry import CheckContext, Fact
from meshctl.platform.kubernetes.conventions import ANCHORS_CONFIG_MAP, ANCHORS_KEY, CONTROL_NS, ISSUER_SECRET
from meshctl.platform.kubernetes.facts import control_object

if TYPE_CHECKING:
    from cryptography import x509

ANCHOR_WHERE = f"ConfigMap {CONTROL_NS}/{ANCHORS_CONFIG_MAP} ({ANCHORS_KEY})"
ISSUER_WHERE = f"Secret {CONTROL_NS}/{ISSUER_SECRET} (tls.crt)"


def _certificates(data: bytes, where: str) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{where} is not a PEM certificate bundle ({exc})") from None


def _anchors(ctx: CheckContext) -> list[x509.Certificate]:
    config_map = control_object(ctx, "configmaps", ANCHORS_CONFIG_MAP)
    text = (config_map.get("data") or {}).get(ANCHORS_KEY)
    if not text:
        raise ConfigError(f"{ANCHOR_WHERE} is empty", hint=ROTATE_HINT)
    return _certificates(str(text).encode(), ANCHOR_WHERE)


def _secret_value(data: dict[str, str], key: str) -> bytes:
    if key not in data:
        raise ConfigError(f"Secret {CONTROL_NS}/{ISSUER_SECRET} has no {key}", hint=REISSUE_HINT)
    try:
        return base64.b64decode(data[key], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"Secret {CONTROL_NS}/{ISSUER_SECRET}: {key} is not base64", hint=REISSUE_HINT) from None


def _issuer(ctx: CheckContext) -> IssuerMaterial:
    from cryptography.hazmat.primitives import serialization

    data = control_object(ctx, "secrets", ISSUER_SECRET).get("data") or {}
    certs = _certificates(_secret_value(data, "tls.crt"), ISSUER_WHERE)
    if not certs:
        raise ConfigError(f"{ISSUER_WHERE} holds no certificate", hint=REISSUE_HINT)
    try:
        key = serialization.load_pem_private_key(_secret_value(data, "tls.key"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Secret {CONTROL_NS}/{ISSUER_SECRET}: tls.key is not a PEM key ({exc})") from None
    return IssuerMaterial(certs[0], key.public_key() == certs[0].public_key())


REISSUE_HINT = (
    f"issue a new issuer from the trust anchor and store it in Secret {CONTROL_NS}/{ISSUER_SECRET}"
    f" (`kubectl -n {CONTROL_NS} create secret tls {ISSUER_SECRET} --cert=issuer.crt --key=issuer.key"
    " --dry-run=client -o yaml | kubectl apply -f -`), then restart the control plane"
)
ROTATE_HINT = (
    f"create new identity material and update ConfigMap {CONTROL_NS}/{ANCHORS_CONFIG_MAP}; restart the"
    " control plane and every meshed workload"
)

ANCHORS: Fact[list[x509.Certificate]] = Fact("trust anchors", _anchors)
ISSUER: Fact[IssuerMaterial] = Fact("issuer", _issuer)

KUBE_SOURCE = IdentitySource(
    anchors=ANCHORS,
    issuer=ISSUER,
    anchor_where=ANCHOR_WHERE,
    issuer_where=ISSUER_WHERE,
    reissue_hint=REISSUE_HINT,
    rotate_anchor_hint=ROTATE_HINT,
)
