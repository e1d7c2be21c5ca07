"""Certificates for the peer of our two-hop arm: two HAProxies with mTLS between them.

They are issued by the bench mesh's own CA (the same anchor, issuer, key type and lifetime as the
sidecars'), so the TLS hop the peer pays for is the one our proxies pay for: ECDSA P-256 leaves with the
issuer in the chain, verified against the same trust anchor on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.sidecar import issue
from meshctl.control.ca import ensure_identity_material
from meshctl.pki.pem import IdentityFiles

CLIENT_IDENTITY = "haproxy-out.bench.peer"
SERVER_IDENTITY = "haproxy-in.bench.peer"


@dataclass(frozen=True)
class PeerCertificates:
    client_pem: Path  # leaf + issuer + key, the form HAProxy's `crt` takes
    server_pem: Path
    anchors: Path  # the mesh's trust anchor, both sides' `ca-file`
    server_name: str  # what the client side checks the server's certificate names (`verifyhost`)


def issue_peer_certificates(identity_dir: Path, out_dir: Path) -> PeerCertificates:
    """Issue a client and a server certificate from the CA in `identity_dir` (created when absent)."""
    ensure_identity_material(identity_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for identity in (CLIENT_IDENTITY, SERVER_IDENTITY):
        cert = issue(identity_dir, identity)
        path = out_dir / f"{identity}.pem"
        path.touch(mode=0o600)
        path.write_bytes(cert.cert_chain_pem + cert.key_pem)
        paths.append(path)
    return PeerCertificates(paths[0], paths[1], IdentityFiles(identity_dir).anchor_cert, SERVER_IDENTITY)
