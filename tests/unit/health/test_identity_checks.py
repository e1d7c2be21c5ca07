"""MC4xxx against real certificates held in memory: valid, expiring, expired, foreign and wrong-key issuers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from meshctl.control.ca import generate_issuer, generate_trust_anchor
from meshctl.health.checks_identity import IdentitySource, IssuerMaterial, identity_category
from meshctl.health.registry import CheckContext, CheckOptions, Fact, Failed, Outcome, Passed, Skipped, Warned
from meshctl.health.runner import run_checks
from meshctl.pki.keys import CertAndKey

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def outcomes(anchors: list[x509.Certificate], issuer: IssuerMaterial) -> dict[str, Outcome]:
    source = IdentitySource(
        anchors=Fact("anchors", lambda _: anchors),
        issuer=Fact("issuer", lambda _: issuer),
        anchor_where="ca.pem",
        issuer_where="issuer.pem",
        reissue_hint="reissue it",
        rotate_anchor_hint="rotate it",
    )
    ctx = CheckContext(CheckOptions(), now=lambda: NOW)
    report = run_checks([identity_category(source)], ctx)
    return {r.check.code: r.outcome for r in report.results}


@pytest.fixture(scope="module")
def anchor() -> CertAndKey:
    return generate_trust_anchor(now=NOW - timedelta(days=1))


def material(pair: CertAndKey) -> IssuerMaterial:
    return IssuerMaterial(pair.cert, True)


def test_fresh_material_passes_everything(anchor: CertAndKey) -> None:
    issuer = generate_issuer(anchor, now=NOW - timedelta(days=1))
    found = outcomes([anchor.cert], material(issuer))
    assert all(isinstance(o, Passed) for o in found.values()), found
    assert len(found) == 9


def test_issuer_expiring_within_60_days_warns(anchor: CertAndKey) -> None:
    issuer = generate_issuer(anchor, lifetime=timedelta(days=10), now=NOW - timedelta(days=1))
    found = outcomes([anchor.cert], material(issuer))
    assert isinstance(found["MC4008"], Warned)
    assert "expires in 9 days" in found["MC4008"].reason and found["MC4008"].hint == "reissue it"
    assert isinstance(found["MC4007"], Passed) and isinstance(found["MC4009"], Passed)


def test_expired_issuer_fails_and_skips_the_margin_check(anchor: CertAndKey) -> None:
    issuer = generate_issuer(anchor, lifetime=timedelta(days=2), now=NOW - timedelta(days=5))
    found = outcomes([anchor.cert], material(issuer))
    assert isinstance(found["MC4007"], Failed) and "expired at" in found["MC4007"].reason
    assert isinstance(found["MC4008"], Skipped)


def test_issuer_of_another_anchor_is_not_signed(anchor: CertAndKey) -> None:
    stranger = generate_trust_anchor(now=NOW - timedelta(days=1))
    issuer = generate_issuer(stranger, now=NOW - timedelta(days=1))
    found = outcomes([anchor.cert], material(issuer))
    assert isinstance(found["MC4009"], Failed) and "not signed by a trust anchor in ca.pem" in found["MC4009"].reason


def test_issuer_key_that_does_not_match(anchor: CertAndKey) -> None:
    issuer = generate_issuer(anchor, now=NOW - timedelta(days=1))
    found = outcomes([anchor.cert], IssuerMaterial(issuer.cert, key_matches=False))
    assert isinstance(found["MC4005"], Failed)
    assert {code for code, o in found.items() if isinstance(o, Skipped)} == {"MC4006", "MC4007", "MC4008", "MC4009"}


def test_expired_anchor_and_unsupported_algorithm(anchor: CertAndKey) -> None:
    old = generate_trust_anchor(lifetime=timedelta(days=30), now=NOW - timedelta(days=40))
    found = outcomes([old.cert], material(generate_issuer(anchor, now=NOW)))
    assert isinstance(found["MC4003"], Failed) and isinstance(found["MC4004"], Skipped)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa root")])
    rsa_root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    found = outcomes([rsa_root], material(generate_issuer(anchor, now=NOW)))
    assert isinstance(found["MC4002"], Failed) and "ECDSA P-256" in found["MC4002"].reason


def test_no_anchor_at_all(anchor: CertAndKey) -> None:
    found = outcomes([], material(generate_issuer(anchor, now=NOW)))
    assert isinstance(found["MC4001"], Failed) and found["MC4001"].hint == "rotate it"
