"""PEM files of the identity material: certificates (0644) and private keys (0600), written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meshctl.errors import ConfigError
from meshctl.files import write_atomic


@dataclass(frozen=True)
class IdentityFiles:
    """The layout of an identity directory ($MESHCTL_HOME/identity)."""

    directory: Path

    @property
    def anchor_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def anchor_key(self) -> Path:
        return self.directory / "ca.key.pem"

    @property
    def issuer_cert(self) -> Path:
        return self.directory / "issuer.pem"

    @property
    def issuer_key(self) -> Path:
        return self.directory / "issuer.key.pem"


def write_certificates(path: Path, certs: list[x509.Certificate]) -> None:
    write_atomic(path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs), 0o644)


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(path, pem, 0o600)


def read_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ConfigError when unreadable or empty."""
    data = _read(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM certificate bundle ({exc})") from None
    return certs


def read_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{path}: expected an ECDSA P-256 key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="`meshctl up` creates the identity material; check the state directory",
        ) from None
