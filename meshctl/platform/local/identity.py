"""Where the local platform keeps its identity material: the trust anchor and the issuer as files under
$MESHCTL_HOME/identity, read for the shared MC4xxx checks (meshctl/health/checks_identity.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.health.checks_identity import IdentitySource, IssuerMaterial
from meshctl.health.registry import CheckContext, Fact
from meshctl.platform.local.facts import LAYOUT

if TYPE_CHECKING:
    from cryptography import x509


def _local_anchors(ctx: CheckContext) -> list[x509.Certificate]:
    from meshctl.pki.pem import IdentityFiles, read_certificates

    return read_certificates(IdentityFiles(ctx.get(LAYOUT).identity).anchor_cert)


def _local_issuer(ctx: CheckContext) -> IssuerMaterial:
    from meshctl.pki.pem import IdentityFiles, read_certificates, read_private_key

    files = IdentityFiles(ctx.get(LAYOUT).identity)
    cert = read_certificates(files.issuer_cert)[0]
    key = read_private_key(files.issuer_key)
    return IssuerMaterial(cert, key.public_key() == cert.public_key())


LOCAL_ANCHORS: Fact[list[x509.Certificate]] = Fact("trust anchors", _local_anchors)
LOCAL_ISSUER: Fact[IssuerMaterial] = Fact("issuer", _local_issuer)

LOCAL_SOURCE = IdentitySource(
    anchors=LOCAL_ANCHORS,
    issuer=LOCAL_ISSUER,
    anchor_where="$MESHCTL_HOME/identity/ca.pem",
    issuer_where="$MESHCTL_HOME/identity/issuer.pem",
    reissue_hint="issue a new issuer from the trust anchor: `meshctl check --fix --yes`",
    rotate_anchor_hint="create new identity material: `meshctl down`, remove $MESHCTL_HOME/identity, `meshctl up`",
)
