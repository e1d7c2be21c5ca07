"""The mesh CA: trust anchor -> issuer -> short-lived workload certificates (ECDSA P-256).

As in Linkerd, the anchor and the issuer live 365 days by default and a workload certificate 24 hours;
a workload proves its name with a token, sends a CSR and gets a leaf whose DNS SAN (and CN, when it
fits 64 characters) is its identity. Validity starts 20 s in the past so that small clock skews do
not reject fresh certificates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshctl.errors import ConfigError
from meshctl.identity import TRUST_DOMAIN, is_dns_label
from meshctl.pki.keys import (
    CN_MAX,
    CertAndKey,
    CertificateError,
    ec_public_key,
    identity_subject,
    is_signed_by,
    key_kind,
    name,
    new_key,
    read_pair,
    write_pair,
)
from meshctl.pki.pem import IdentityFiles, read_certificates

ANCHOR_NAME = f"root.meshctl.{TRUST_DOMAIN}"
ISSUER_NAME = f"identity.meshctl.{TRUST_DOMAIN}"
ANCHOR_LIFETIME = timedelta(days=365)
ISSUER_LIFETIME = timedelta(days=365)
LEAF_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(seconds=20)
_MAX_CSR_BYTES = 16 * 1024


class CsrError(CertificateError):
    """The request is at fault (bad CSR, wrong name, wrong key type)."""


class IssuerError(CertificateError):
    """The CA is at fault (issuer expired, not yet valid); no request can succeed."""


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_trust_anchor(
    *, common_name: str = ANCHOR_NAME, lifetime: timedelta = ANCHOR_LIFETIME, now: datetime | None = None
) -> CertAndKey:
    """A self-signed root that may sign one level of issuers (pathlen 1)."""
    start = _now(now)
    key = new_key()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertAndKey(cert, key)


def generate_issuer(
    anchor: CertAndKey,
    *,
    common_name: str = ISSUER_NAME,
    lifetime: timedelta = ISSUER_LIFETIME,
    now: datetime | None = None,
) -> CertAndKey:
    """An intermediate CA signed by the anchor (CA:TRUE, pathlen 0); never outlives the anchor."""
    start = _now(now)
    key = new_key()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(anchor.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(min(start + lifetime, anchor.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(_authority_key_id(anchor.cert), critical=False)
        .sign(anchor.key, hashes.SHA256())
    )
    return CertAndKey(cert, key)


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ec_public_key(issuer))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def check_identity_name(identity: str) -> None:
    labels = identity.split(".")
    if len(identity) > 253 or len(labels) < 2 or not all(is_dns_label(label) for label in labels):
        raise CsrError(f"identity {identity!r} is not a DNS name")


def sign_csr(
    csr_der: bytes,
    identity: str,
    issuer: CertAndKey,
    *,
    lifetime: timedelta = LEAF_LIFETIME,
    now: datetime | None = None,
) -> x509.Certificate:
    """Certify `identity` for the key in the CSR, after checking the CSR asks for exactly that name."""
    check_identity_name(identity)
    start = _now(now)
    if start >= issuer.cert.not_valid_after_utc:
        raise IssuerError(f"issuer certificate expired at {issuer.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if start < issuer.cert.not_valid_before_utc:
        raise IssuerError(
            f"issuer certificate not valid before {issuer.cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    csr = _load_csr(csr_der)
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise CsrError(f"CSR key must be ECDSA P-256, got {key_kind(public)}")
    names = _requested_names(csr)
    if not names:
        raise CsrError("CSR names no identity (no CN and no DNS SAN)")
    if names != {identity}:
        asked = ", ".join(sorted(names))
        raise CsrError(f"CSR asks for {asked}, but the token is for identity {identity}")
    return (
        x509.CertificateBuilder()
        .subject_name(identity_subject(identity))
        .issuer_name(issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(min(start + lifetime, issuer.cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=len(identity) > CN_MAX)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(_authority_key_id(issuer.cert), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )


def _load_csr(csr_der: bytes) -> x509.CertificateSigningRequest:
    if not csr_der:
        raise CsrError("CSR is empty")
    if len(csr_der) > _MAX_CSR_BYTES:
        raise CsrError(f"CSR larger than {_MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_der_x509_csr(csr_der)
        valid = csr.is_signature_valid
    except ValueError as exc:
        raise CsrError(f"CSR is not a DER PKCS#10 request: {exc}") from None
    if not valid:
        raise CsrError("CSR signature does not verify")
    return csr


def _requested_names(csr: x509.CertificateSigningRequest) -> set[str]:
    names = {str(attr.value) for attr in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    except ValueError as exc:
        raise CsrError(f"CSR extensions are malformed: {exc}") from None
    others = [general for general in san if not isinstance(general, x509.DNSName)]
    if others:
        raise CsrError(f"CSR may only ask for DNS names, got {type(others[0]).__name__}")
    return names | set(san.get_values_for_type(x509.DNSName))


def ensure_identity_material(
    identity_dir: Path,
    *,
    anchor_lifetime: timedelta = ANCHOR_LIFETIME,
    issuer_lifetime: timedelta = ISSUER_LIFETIME,
) -> None:
    """Create the anchor (ca.pem, ca.key.pem) and issuer (issuer.pem, issuer.key.pem) when absent.

    Existing files are kept; a new anchor always gets a new issuer (an old one would not chain to it).
    """
    files = IdentityFiles(identity_dir)
    identity_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if files.anchor_cert.exists() and files.anchor_key.exists():
        anchor = read_pair(files.anchor_cert, files.anchor_key)
        fresh_anchor = False
    else:
        anchor = generate_trust_anchor(lifetime=anchor_lifetime)
        write_pair(files.anchor_cert, files.anchor_key, anchor)
        fresh_anchor = True
    if not fresh_anchor and files.issuer_cert.exists() and files.issuer_key.exists():
        return
    write_pair(files.issuer_cert, files.issuer_key, generate_issuer(anchor, lifetime=issuer_lifetime))


def load_issuer(identity_dir: Path) -> tuple[CertAndKey, list[x509.Certificate]]:
    """The issuer (cert + key) and the trust anchors, checked to chain: what the CA needs to run."""
    files = IdentityFiles(identity_dir)
    issuer = read_pair(files.issuer_cert, files.issuer_key)
    anchors = read_certificates(files.anchor_cert)
    if not any(is_signed_by(issuer.cert, anchor) for anchor in anchors):
        raise ConfigError(
            f"{files.issuer_cert} is not signed by a trust anchor in {files.anchor_cert}",
            hint="issue a new issuer from the anchor, or restore the matching ca.pem",
        )
    return issuer, anchors
