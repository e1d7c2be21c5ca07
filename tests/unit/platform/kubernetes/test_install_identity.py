"""`meshctl install --identity-*-file`: given trust anchors and issuer are checked, then used as they are;
without them a new anchor and issuer are generated with the mesh's own CA code."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from meshctl.cli.install import manifests
from meshctl.control.ca import generate_issuer, generate_trust_anchor
from meshctl.errors import ConfigError
from meshctl.pki.keys import CertAndKey, is_signed_by, write_pair
from meshctl.pki.pem import write_certificates
from meshctl.platform.kubernetes import conventions


def _files(tmp_path: Path, anchor: CertAndKey, issuer: CertAndKey) -> dict[str, Path]:
    write_certificates(tmp_path / "ca.crt", [anchor.cert])
    write_pair(tmp_path / "issuer.crt", tmp_path / "issuer.key", issuer)
    names = {"anchors": "ca.crt", "issuer_cert": "issuer.crt", "issuer_key": "issuer.key"}
    return {argument: tmp_path / name for argument, name in names.items()}


def _install(files: dict[str, Path]) -> list[dict[str, Any]]:
    return manifests(crds_only=False, control_plane_only=True, **files)


def _issuer_secret(documents: list[dict[str, Any]]) -> dict[str, bytes]:
    (secret,) = [d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == conventions.ISSUER_SECRET]
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def _anchors(documents: list[dict[str, Any]]) -> list[x509.Certificate]:
    (config,) = [d for d in documents if d["metadata"]["name"] == conventions.ANCHORS_CONFIG_MAP]
    return x509.load_pem_x509_certificates(config["data"][conventions.ANCHORS_KEY].encode())


def test_given_files_are_used_as_they_are(tmp_path: Path) -> None:
    anchor = generate_trust_anchor()
    issuer = generate_issuer(anchor)
    documents = _install(_files(tmp_path, anchor, issuer))
    assert _anchors(documents) == [anchor.cert]
    assert _issuer_secret(documents) == {"tls.crt": issuer.cert_pem(), "tls.key": issuer.key_pem()}


def test_generated_identity_chains_and_is_new_each_time() -> None:
    first, second = (manifests(crds_only=False, control_plane_only=True) for _ in range(2))
    for documents in (first, second):
        issuer = x509.load_pem_x509_certificate(_issuer_secret(documents)["tls.crt"])
        assert is_signed_by(issuer, _anchors(documents)[0])
    assert _anchors(first) != _anchors(second)


def test_an_issuer_from_another_anchor_is_refused(tmp_path: Path) -> None:
    files = _files(tmp_path, generate_trust_anchor(), generate_issuer(generate_trust_anchor()))
    with pytest.raises(ConfigError, match="is not signed by a trust anchor in") as caught:
        _install(files)
    assert caught.value.hint


def test_an_expired_issuer_is_refused(tmp_path: Path) -> None:
    anchor = generate_trust_anchor(now=datetime.now(UTC) - timedelta(days=30))
    issuer = generate_issuer(anchor, lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=30))
    with pytest.raises(ConfigError, match=r"issuer\.crt: identity\.meshctl\.cluster\.local expired \(valid "):
        _install(_files(tmp_path, anchor, issuer))


def test_a_key_that_is_not_the_issuer_key_is_refused(tmp_path: Path) -> None:
    anchor = generate_trust_anchor()
    files = _files(tmp_path, anchor, generate_issuer(anchor))
    other = generate_issuer(anchor)
    write_pair(tmp_path / "other.crt", files["issuer_key"], other)
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        _install(files)


def test_a_leaf_is_not_an_issuer(tmp_path: Path) -> None:
    from meshctl.control.ca import sign_csr
    from meshctl.pki.keys import make_csr, new_key

    anchor = generate_trust_anchor()
    key = new_key()
    leaf = sign_csr(make_csr("books.booksapp.svc", key), "books.booksapp.svc", anchor)
    with pytest.raises(ConfigError, match=r"is not a CA certificate"):
        _install(_files(tmp_path, anchor, CertAndKey(leaf, key)))


def test_an_unreadable_file_is_one_line_with_a_hint_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshctl", "install", "--identity-trust-anchors-file", str(tmp_path / "nope.crt"),
         "--identity-issuer-certificate-file", str(tmp_path / "i.crt"), "--identity-issuer-key-file",
         str(tmp_path / "i.key")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "nope.crt" in done.stderr and "hint:" in done.stderr and "meshctl up" not in done.stderr
    assert "Traceback" not in done.stderr
