"""Questions about certificates that `check`, the CA and the proxies ask: is it valid now, for how long,
is it the right key type, does a leaf chain to the trust anchors under the identity it claims."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from meshctl.pki.keys import CertificateError, is_signed_by
from meshctl.pki.pem import read_certificates

__all__ = [
    "Validity",
    "dns_names",
    "is_p256",
    "is_signed_by",
    "load_chain",
    "validity",
    "verify_leaf",
]


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime
    not_after: datetime

    def contains(self, now: datetime | None = None) -> bool:
        at = now or datetime.now(UTC)
        return self.not_before <= at < self.not_after

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.not_after

    def remaining(self, now: datetime | None = None) -> timedelta:
        """Time left (negative once expired)."""
        return self.not_after - (now or datetime.now(UTC))

    def expires_within(self, window: timedelta, now: datetime | None = None) -> bool:
        return self.remaining(now) < window

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


def validity(cert: x509.Certificate) -> Validity:
    return Validity(cert.not_valid_before_utc, cert.not_valid_after_utc)


def load_chain(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM bundle, in file order (leaf first for a chain)."""
    return read_certificates(path)


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def is_p256(cert: x509.Certificate) -> bool:
    public = cert.public_key()
    return isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"


def verify_leaf(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    identity: str,
    *,
    now: datetime | None = None,
) -> None:
    """RFC 5280 path validation of `chain` (leaf first) to one of `anchors`, for DNS name `identity`.

    Raises CertificateError naming the reason (expired, unknown authority, wrong name ...).
    """
    if not chain:
        raise CertificateError("empty certificate chain")
    if not anchors:
        raise CertificateError("no trust anchors")
    leaf, intermediates = chain[0], list(chain[1:])
    at = now or datetime.now(UTC)
    for cert in (leaf, *intermediates):
        if not validity(cert).contains(at):
            window = validity(cert)
            raise CertificateError(
                f"certificate {cert.subject.rfc4514_string()} is valid from"
                f" {window.not_before:%Y-%m-%d %H:%M:%S} to {window.not_after:%Y-%m-%d %H:%M:%S} UTC, not now"
            )
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(at)
        .max_chain_depth(4)
        .build_server_verifier(x509.DNSName(identity))
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise CertificateError(f"certificate for {identity} does not verify: {exc}") from None
