"""A throwaway mesh PKI for tests and benchmarks: trust anchor → issuer → workload leaves.

Uses the control plane's own CA code, so the certificates have exactly the shape proxies meet in
the mesh (P-256, identity as DNS SAN, issuer chain). Nothing touches disk unless asked (save/load
let several processes share one PKI).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshctl.control.ca import generate_issuer, generate_trust_anchor
from meshctl.control.ca import sign_csr as _sign_csr
from meshctl.identity import workload_identity
from meshctl.pki.keys import CertAndKey, make_csr, new_key, private_key_pem, read_pair, write_pair
from meshctl.proxy.control_client import IssuedCertificate


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class MeshPki:
    def __init__(self, anchor: CertAndKey | None = None, issuer: CertAndKey | None = None) -> None:
        self.anchor: CertAndKey = anchor or generate_trust_anchor()
        self.issuer: CertAndKey = issuer or generate_issuer(self.anchor)
        self.anchors_pem = _pem(self.anchor.cert)

    def issue(self, identity: str) -> IssuedCertificate:
        """A certificate for `identity`, as the control client would deliver it."""
        key = new_key()
        leaf = _sign_csr(make_csr(identity, key), identity, self.issuer)
        return IssuedCertificate(
            key_pem=private_key_pem(key),
            cert_chain_pem=_pem(leaf) + _pem(self.issuer.cert),
            trust_anchors_pem=self.anchors_pem,
            identity=identity,
            not_after=leaf.not_valid_after_utc,
        )

    def workload(self, service_account: str, namespace: str) -> IssuedCertificate:
        return self.issue(workload_identity(service_account, namespace))

    def save(self, directory: Path) -> None:
        """Anchor and issuer (with keys) as PEM files, for other processes to load."""
        directory.mkdir(parents=True, exist_ok=True)
        write_pair(directory / "ca.pem", directory / "ca.key.pem", self.anchor)
        write_pair(directory / "issuer.pem", directory / "issuer.key.pem", self.issuer)

    @classmethod
    def load(cls, directory: Path) -> MeshPki:
        return cls(
            read_pair(directory / "ca.pem", directory / "ca.key.pem"),
            read_pair(directory / "issuer.pem", directory / "issuer.key.pem"),
        )
