"""The certificates `meshctl install` puts in the cluster, made with the mesh's own CA code.

- Identity: the trust anchors (a PEM bundle) and the issuer (certificate + key) the control plane signs
  workload certificates with. Generated (the anchor's key is then thrown away, as Linkerd does: rotate by
  installing a new anchor) unless given as files, which are checked: the issuer signed by one of the
  anchors, a CA, with its key, and nothing expired.
- The proxy injector's serving certificate, for the Service the API server calls, and the CA that signed
  it (the webhook's caBundle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meshctl.errors import ConfigError, UsageError
from meshctl.platform.kubernetes.conventions import CONTROL_NS, INJECTOR_SERVICE

INJECTOR_DNS_NAME = f"{INJECTOR_SERVICE}.{CONTROL_NS}.svc"
INJECTOR_CA_NAME = f"injector-ca.{CONTROL_NS}"
INJECTOR_LIFETIME = timedelta(days=365)
_FILES_HINT = "make an issuer from your anchor, e.g. with step-cli, and pass all three files"


@dataclass(frozen=True)
class IdentityMaterial:
    anchors_pem: str  # one or more certificates
    issuer_cert_pem: str
    issuer_key_pem: str


@dataclass(frozen=True)
class InjectorTls:
    ca_pem: str
    cert_pem: str
    key_pem: str


def generate_identity(now: datetime | None = None) -> IdentityMaterial:
    from meshctl.control.ca import generate_issuer, generate_trust_anchor

    anchor = generate_trust_anchor(now=now)
    issuer = generate_issuer(anchor, now=now)
    return IdentityMaterial(anchor.cert_pem().decode(), issuer.cert_pem().decode(), issuer.key_pem().decode())


def identity_from_files(
    anchors: Path | None, issuer_cert: Path | None, issuer_key: Path | None, now: datetime | None = None
) -> IdentityMaterial | None:
    """The given identity material, checked; None when no file is given (then it is generated)."""
    given = {
        "--identity-trust-anchors-file": anchors,
        "--identity-issuer-certificate-file": issuer_cert,
        "--identity-issuer-key-file": issuer_key,
    }
    if all(path is None for path in given.values()):
        return None
    missing = [flag for flag, path in given.items() if path is None]
    if missing or anchors is None or issuer_cert is None or issuer_key is None:
        raise UsageError(
            f"{' and '.join(missing)} missing: the issuer must chain to the anchors the cluster trusts",
            hint=f"pass the trust anchors, the issuer's certificate and its key together ({_FILES_HINT}), or none "
            "of them to have new ones generated",
        )
    return _checked(anchors, issuer_cert, issuer_key, now or datetime.now(UTC))


def _checked(anchors_path: Path, cert_path: Path, key_path: Path, now: datetime) -> IdentityMaterial:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from meshctl.pki.certinfo import validity
    from meshctl.pki.keys import CertificateError, common_name, is_signed_by, read_pair
    from meshctl.pki.pem import read_certificates

    try:
        anchors = read_certificates(anchors_path)
        issuer = read_pair(cert_path, key_path)
    except ConfigError as exc:  # its hint speaks of the local mesh's files
        raise ConfigError(exc.message, hint=_FILES_HINT) from None
    except CertificateError as exc:
        raise ConfigError(f"{cert_path}: {exc}", hint=_FILES_HINT) from None
    for cert, path in [(a, anchors_path) for a in anchors] + [(issuer.cert, cert_path)]:
        span = validity(cert)
        if not span.contains(now):
            when = "expired" if span.expired(now) else "is not valid yet"
            raise ConfigError(
                f"{path}: {common_name(cert)} {when} (valid {span.not_before:%Y-%m-%d %H:%M} to "
                f"{span.not_after:%Y-%m-%d %H:%M} UTC)",
                hint="issue a new one, or leave out the identity files to have new ones generated",
            )
    if not any(is_signed_by(issuer.cert, anchor) for anchor in anchors):
        raise ConfigError(
            f"{cert_path}: the issuer {common_name(issuer.cert)} is not signed by a trust anchor in {anchors_path}",
            hint="pass the anchor that signed the issuer, or an issuer signed by one of these anchors",
        )
    try:
        is_ca = issuer.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ConfigError(
            f"{cert_path}: {common_name(issuer.cert)} is not a CA certificate (BasicConstraints CA:TRUE)",
            hint="the issuer signs workload certificates: issue it as an intermediate CA of the anchor",
        )
    # the certificates alone, whatever comments the files held besides
    anchors_pem = "".join(anchor.public_bytes(serialization.Encoding.PEM).decode() for anchor in anchors)
    return IdentityMaterial(anchors_pem, issuer.cert_pem().decode(), issuer.key_pem().decode())


def generate_injector_tls(now: datetime | None = None) -> InjectorTls:
    """A CA and, signed by it, the serving certificate of the injector's Service name."""
    from cryptography.hazmat.primitives import serialization

    from meshctl.control.ca import generate_trust_anchor, sign_csr
    from meshctl.pki.keys import make_csr, new_key, private_key_pem

    ca = generate_trust_anchor(common_name=INJECTOR_CA_NAME, lifetime=INJECTOR_LIFETIME, now=now)
    key = new_key()
    cert = sign_csr(make_csr(INJECTOR_DNS_NAME, key), INJECTOR_DNS_NAME, ca, lifetime=INJECTOR_LIFETIME, now=now)
    return InjectorTls(
        ca_pem=ca.cert_pem().decode(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=private_key_pem(key).decode(),
    )
