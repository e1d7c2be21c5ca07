"""The mesh CA: anchor -> issuer -> leaf, CSR checks, files on disk, validity helpers."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshctl.control import ca
from meshctl.control.ca import CsrError, IssuerError
from meshctl.errors import ConfigError
from meshctl.identity import control_plane_identity, workload_identity
from meshctl.pki import keys
from meshctl.pki.certinfo import dns_names, is_p256, is_signed_by, load_chain, validity, verify_leaf
from meshctl.pki.keys import CertAndKey, CertificateError

BOOKS = workload_identity("books", "booksapp")  # 60 characters: fits a CN
WEBAPP = workload_identity("webapp", "booksapp")  # 61 characters
LONG = control_plane_identity()  # 76 characters: no CN


# One instant for both: an issuer made a second later than its anchor is capped by the anchor's end, one
# second short of a full lifetime, and the lifetime assertions below would depend on the machine's speed.
MADE_AT = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def anchor() -> CertAndKey:
    return ca.generate_trust_anchor(now=MADE_AT)


@pytest.fixture(scope="module")
def issuer(anchor: CertAndKey) -> CertAndKey:
    return ca.generate_issuer(anchor, now=MADE_AT)


def _leaf(issuer: CertAndKey, identity: str = BOOKS, **kwargs: object) -> x509.Certificate:
    return ca.sign_csr(keys.make_csr(identity, keys.new_key()), identity, issuer, **kwargs)  # type: ignore[arg-type]


E = TypeVar("E", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


def test_anchor_is_a_self_signed_p256_ca_for_365_days(anchor: CertAndKey) -> None:
    cert = anchor.cert
    assert is_p256(cert)
    assert is_signed_by(cert, cert)
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value == x509.BasicConstraints(ca=True, path_length=1)
    assert _ext(cert, x509.KeyUsage).value.key_cert_sign
    assert validity(cert).lifetime == timedelta(days=365) + ca.CLOCK_SKEW


def test_issuer_is_signed_by_the_anchor_with_pathlen_0(anchor: CertAndKey, issuer: CertAndKey) -> None:
    cert = issuer.cert
    assert is_p256(cert)
    assert is_signed_by(cert, anchor.cert)
    assert not is_signed_by(cert, ca.generate_trust_anchor().cert)
    assert _ext(cert, x509.BasicConstraints).value == x509.BasicConstraints(ca=True, path_length=0)
    assert validity(cert).lifetime == timedelta(days=365) + ca.CLOCK_SKEW


def test_issuer_never_outlives_its_anchor() -> None:
    short = ca.generate_trust_anchor(lifetime=timedelta(days=30))
    issuer = ca.generate_issuer(short, lifetime=timedelta(days=365))
    assert issuer.cert.not_valid_after_utc == short.cert.not_valid_after_utc


def test_leaf_chains_to_the_anchor_for_its_identity(anchor: CertAndKey, issuer: CertAndKey) -> None:
    leaf = _leaf(issuer)
    verify_leaf([leaf, issuer.cert], [anchor.cert], BOOKS)
    assert dns_names(leaf) == [BOOKS]
    assert [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [BOOKS]
    assert _ext(leaf, x509.BasicConstraints).value.ca is False
    usage = _ext(leaf, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = _ext(leaf, x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert validity(leaf).lifetime == timedelta(hours=24) + ca.CLOCK_SKEW


def test_a_long_identity_has_no_cn_and_a_critical_san(anchor: CertAndKey, issuer: CertAndKey) -> None:
    leaf = _leaf(issuer, LONG)
    assert len(leaf.subject) == 0
    assert _ext(leaf, x509.SubjectAlternativeName).critical
    verify_leaf([leaf, issuer.cert], [anchor.cert], LONG)


def test_leaf_does_not_verify_for_another_name_or_anchor(anchor: CertAndKey, issuer: CertAndKey) -> None:
    leaf = _leaf(issuer)
    with pytest.raises(CertificateError, match="no matching subjectAltName"):
        verify_leaf([leaf, issuer.cert], [anchor.cert], WEBAPP)
    with pytest.raises(CertificateError, match="does not verify"):
        verify_leaf([leaf, issuer.cert], [ca.generate_trust_anchor().cert], BOOKS)


def test_leaf_does_not_verify_once_expired(anchor: CertAndKey, issuer: CertAndKey) -> None:
    leaf = _leaf(issuer)
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(CertificateError, match="not now"):
        verify_leaf([leaf, issuer.cert], [anchor.cert], BOOKS, now=later)


def test_leaf_lifetime_is_configurable_and_capped_by_the_issuer(anchor: CertAndKey) -> None:
    issuer = ca.generate_issuer(anchor, lifetime=timedelta(hours=1))
    assert validity(_leaf(issuer, lifetime=timedelta(minutes=5))).lifetime == timedelta(minutes=5) + ca.CLOCK_SKEW
    assert _leaf(issuer).not_valid_after_utc == issuer.cert.not_valid_after_utc


def test_csr_for_another_name_is_refused(issuer: CertAndKey) -> None:
    csr = keys.make_csr(WEBAPP, keys.new_key())
    with pytest.raises(CsrError) as caught:
        ca.sign_csr(csr, BOOKS, issuer)
    assert str(caught.value) == f"CSR asks for {WEBAPP}, but the token is for identity {BOOKS}"


def test_csr_with_an_extra_name_is_refused(issuer: CertAndKey) -> None:
    key = keys.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BOOKS)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(BOOKS), x509.DNSName("evil.example")]), False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with pytest.raises(CsrError, match="CSR asks for books.booksapp.*, evil.example, but the token"):
        ca.sign_csr(csr, BOOKS, issuer)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "CSR key must be ECDSA P-256, got EC secp384r1"),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "CSR key must be ECDSA P-256, got RSA",
        ),
    ],
)
def test_csr_with_a_key_other_than_p256_is_refused(
    issuer: CertAndKey, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, expected: str
) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BOOKS)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with pytest.raises(CsrError) as caught:
        ca.sign_csr(csr, BOOKS, issuer)
    assert str(caught.value) == expected


def test_csr_with_a_bad_signature_is_refused(issuer: CertAndKey) -> None:
    csr = bytearray(keys.make_csr(BOOKS, keys.new_key()))
    csr[-1] ^= 0x01  # the last byte of the ECDSA signature's s
    with pytest.raises(CsrError, match="^CSR signature does not verify$"):
        ca.sign_csr(bytes(csr), BOOKS, issuer)


@pytest.mark.parametrize(
    ("csr", "expected"),
    [(b"", "CSR is empty"), (b"\x30\x03junk", "CSR is not a DER PKCS#10 request")],
)
def test_garbage_csr_is_refused(issuer: CertAndKey, csr: bytes, expected: str) -> None:
    with pytest.raises(CsrError, match=f"^{expected}"):
        ca.sign_csr(csr, BOOKS, issuer)


def test_expired_issuer_is_detected_and_signs_nothing(anchor: CertAndKey) -> None:
    past = datetime.now(UTC) - timedelta(days=400)
    expired = ca.generate_issuer(anchor, lifetime=timedelta(days=365), now=past)
    window = validity(expired.cert)
    assert window.expired() and not window.contains()
    assert window.remaining() < timedelta(0)
    with pytest.raises(IssuerError, match="^issuer certificate expired at "):
        ca.sign_csr(keys.make_csr(BOOKS, keys.new_key()), BOOKS, expired)


def test_expiry_warning_window(anchor: CertAndKey) -> None:
    soon = ca.generate_issuer(anchor, lifetime=timedelta(days=30))
    assert validity(soon.cert).expires_within(timedelta(days=60))
    assert not validity(soon.cert).expires_within(timedelta(days=7))


def test_ensure_identity_material_creates_files_once(tmp_path: Path) -> None:
    directory = tmp_path / "identity"
    ca.ensure_identity_material(directory)
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["ca.key.pem", "ca.pem", "issuer.key.pem", "issuer.pem"]
    for key in ("ca.key.pem", "issuer.key.pem"):
        assert stat.S_IMODE((directory / key).stat().st_mode) == 0o600
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    ca.ensure_identity_material(directory)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before

    (directory / "issuer.pem").unlink()  # a missing issuer is re-issued from the kept anchor
    ca.ensure_identity_material(directory)
    assert (directory / "ca.pem").read_bytes() == before["ca.pem"]
    issuer, anchors = ca.load_issuer(directory)
    assert is_signed_by(issuer.cert, anchors[0])
    assert load_chain(directory / "ca.pem") == anchors


def test_load_issuer_refuses_an_issuer_of_another_anchor(tmp_path: Path) -> None:
    ca.ensure_identity_material(tmp_path)
    stranger = ca.generate_issuer(ca.generate_trust_anchor())
    keys.write_pair(tmp_path / "issuer.pem", tmp_path / "issuer.key.pem", stranger)
    with pytest.raises(ConfigError, match="is not signed by a trust anchor"):
        ca.load_issuer(tmp_path)


def test_read_pair_refuses_a_key_of_another_certificate(tmp_path: Path) -> None:
    ca.ensure_identity_material(tmp_path)
    (tmp_path / "issuer.key.pem").write_bytes((tmp_path / "ca.key.pem").read_bytes())
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        keys.read_pair(tmp_path / "issuer.pem", tmp_path / "issuer.key.pem")


def test_missing_files_are_a_config_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        ca.load_issuer(tmp_path)
    assert "issuer.pem" in caught.value.message
    assert caught.value.hint is not None and "meshctl up" in caught.value.hint
