"""MC4xxx: the trust anchor and the issuer, on any platform.

`identity_category(source)` builds the category from where a platform keeps its identity material (files
on the local platform, a Secret on Kubernetes); the checks themselves only see certificates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from meshctl.health.registry import Category, Check, CheckContext, Fact, Failed, Outcome, Passed, Severity

if TYPE_CHECKING:
    from cryptography import x509

EXPIRY_WARNING = timedelta(days=60)  # as `linkerd check`: warn when a CA certificate has less left


@dataclass(frozen=True)
class IssuerMaterial:
    cert: x509.Certificate
    key_matches: bool


@dataclass(frozen=True)
class IdentitySource:
    """Where a platform keeps its identity material, as facts, and how to replace it."""

    anchors: Fact[list[x509.Certificate]]  # raises MeshError (with a hint) when unreadable
    issuer: Fact[IssuerMaterial]
    anchor_where: str  # e.g. "$MESHCTL_HOME/identity/ca.pem", for messages
    issuer_where: str
    reissue_hint: str  # how to issue a new issuer from the anchor
    rotate_anchor_hint: str


def _when(cert: x509.Certificate) -> str:
    return f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"


def _supported(
    what: str, certs: Callable[[CheckContext], list[x509.Certificate]], hint: str
) -> Callable[[CheckContext], Outcome]:
    def run(ctx: CheckContext) -> Outcome:
        from meshctl.pki.certinfo import is_p256

        bad = [c for c in certs(ctx) if not is_p256(c)]
        if bad:
            return Failed(f"{what} {_subject(bad[0])} does not use ECDSA P-256", hint)
        return Passed("ECDSA P-256")

    return run


def _valid_now(
    what: str, certs: Callable[[CheckContext], list[x509.Certificate]], hint: str
) -> Callable[[CheckContext], Outcome]:
    def run(ctx: CheckContext) -> Outcome:
        from meshctl.pki.certinfo import validity

        now = ctx.now()
        for cert in certs(ctx):
            window = validity(cert)
            if window.expired(now):
                return Failed(f"{what} {_subject(cert)} expired at {_when(cert)}", hint)
            if not window.contains(now):
                return Failed(
                    f"{what} {_subject(cert)} is not valid before {window.not_before:%Y-%m-%d %H:%M:%S} UTC", hint
                )
        return Passed()

    return run


def _lasting(
    what: str, certs: Callable[[CheckContext], list[x509.Certificate]], hint: str
) -> Callable[[CheckContext], Outcome]:
    def run(ctx: CheckContext) -> Outcome:
        from meshctl.pki.certinfo import validity

        now = ctx.now()
        for cert in certs(ctx):
            left = validity(cert).remaining(now)
            if left < EXPIRY_WARNING:
                days = max(0, left.days)
                return Failed(f"{what} {_subject(cert)} expires in {days} days, at {_when(cert)}", hint)
        soonest = min((validity(c).remaining(now) for c in certs(ctx)), default=timedelta(0))
        return Passed(f"{soonest.days} days left")

    return run


def _subject(cert: x509.Certificate) -> str:
    from meshctl.pki.keys import common_name

    return common_name(cert)


def identity_category(source: IdentitySource, *, requires: tuple[str, ...] = ()) -> Category:
    def anchors(ctx: CheckContext) -> list[x509.Certificate]:
        return ctx.get(source.anchors)

    def issuer(ctx: CheckContext) -> list[x509.Certificate]:
        return [ctx.get(source.issuer).cert]

    def anchors_readable(ctx: CheckContext) -> Outcome:
        found = anchors(ctx)
        if not found:
            return Failed(f"{source.anchor_where} holds no certificate", source.rotate_anchor_hint)
        return Passed(f"{len(found)} trust anchor(s)")

    def issuer_readable(ctx: CheckContext) -> Outcome:
        material = ctx.get(source.issuer)
        if not material.key_matches:
            return Failed(
                f"the issuer key is not the key of the certificate in {source.issuer_where}", source.reissue_hint
            )
        return Passed(_subject(material.cert))

    def issuer_signed(ctx: CheckContext) -> Outcome:
        from meshctl.pki.keys import is_signed_by

        cert = ctx.get(source.issuer).cert
        if not any(is_signed_by(cert, anchor) for anchor in anchors(ctx)):
            return Failed(
                f"issuer {_subject(cert)} (issued by {cert.issuer.rfc4514_string()}) is not signed by a trust anchor"
                f" in {source.anchor_where}",
                source.reissue_hint,
            )
        return Passed()

    anchor_hint = source.rotate_anchor_hint
    issuer_hint = source.reissue_hint
    return Category(
        id="mesh-identity",
        name="the trust anchor and the issuer",
        checks=(
            Check("MC4001", "the trust anchors are readable", anchor_hint, anchors_readable, timeout=3.0),
            Check(
                "MC4002",
                "the trust anchors use a supported algorithm",
                anchor_hint,
                _supported("trust anchor", anchors, anchor_hint),
                timeout=2.0,
                retry=False,
                requires=("MC4001",),
            ),
            Check(
                "MC4003",
                "the trust anchors are within their validity period",
                anchor_hint,
                _valid_now("trust anchor", anchors, anchor_hint),
                timeout=2.0,
                requires=("MC4001",),
            ),
            Check(
                "MC4004",
                "the trust anchors are valid for at least 60 days",
                anchor_hint,
                _lasting("trust anchor", anchors, anchor_hint),
                severity=Severity.WARNING,
                timeout=2.0,
                retry=False,
                requires=("MC4003",),
            ),
            Check("MC4005", "the issuer certificate and key are readable", issuer_hint, issuer_readable, timeout=3.0),
            Check(
                "MC4006",
                "the issuer uses a supported algorithm",
                issuer_hint,
                _supported("issuer", issuer, issuer_hint),
                timeout=2.0,
                retry=False,
                requires=("MC4005",),
            ),
            Check(
                "MC4007",
                "the issuer is within its validity period",
                issuer_hint,
                _valid_now("issuer", issuer, issuer_hint),
                timeout=2.0,
                requires=("MC4005",),
            ),
            Check(
                "MC4008",
                "the issuer is valid for at least 60 days",
                issuer_hint,
                _lasting("issuer", issuer, issuer_hint),
                severity=Severity.WARNING,
                timeout=2.0,
                retry=False,
                requires=("MC4007",),
            ),
            Check(
                "MC4009",
                "the issuer is signed by the trust anchor",
                issuer_hint,
                issuer_signed,
                timeout=2.0,
                requires=("MC4001", "MC4005"),
            ),
        ),
        requires=requires,
    )
