"""Keys, CSRs and certificate/key pairs: what a workload needs to get an identity, and the CA to give one.

Shared by the control plane (which signs), the proxy (which asks) and `check` (which inspects), so that
the proxy never imports the CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshctl.errors import ConfigError
from meshctl.pki.pem import read_certificates, read_private_key, write_certificates, write_private_key

CN_MAX = 64


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class CertificateError(ValueError):
    """A certificate cannot be issued or does not verify; the message says why."""


@dataclass(frozen=True)
class CertAndKey:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return private_key_pem(self.key)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def identity_subject(identity: str) -> x509.Name:
    """CN = identity when it fits X.520's 64-character bound, else an empty subject.

    Identities often exceed 64 characters; the DNS SAN is what peers verify (RFC 6125), so the CN is
    only a convenience for people reading certificates. An empty subject makes the SAN critical.
    """
    return name(identity) if len(identity) <= CN_MAX else x509.Name([])


def make_csr(identity: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PKCS#10 request (DER) for `identity`: its DNS SAN (and its CN when short enough) name it."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_subject(identity))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=len(identity) > CN_MAX)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def key_kind(public: object) -> str:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"EC {public.curve.name}"
    return type(public).__name__.lstrip("_").replace("PublicKey", "") or "unknown"


def ec_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CertificateError(f"{common_name(cert)}: expected an EC key, got {key_kind(public)}")
    return public


def common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else cert.subject.rfc4514_string()


# --- identity material on disk ----------------------------------------------------------------------


def write_pair(cert_path: Path, key_path: Path, pair: CertAndKey) -> None:
    write_private_key(key_path, pair.key)
    write_certificates(cert_path, [pair.cert])


def read_pair(cert_path: Path, key_path: Path) -> CertAndKey:
    """A certificate and its key; ConfigError when unreadable or when the key is not the cert's."""
    certs = read_certificates(cert_path)
    key = read_private_key(key_path)
    if key.public_key() != ec_public_key(certs[0]):
        raise ConfigError(f"{key_path} is not the key of the certificate in {cert_path}")
    return CertAndKey(certs[0], key)


def is_signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when `parent` names and signs `child` (the signature is checked, not just the names)."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
