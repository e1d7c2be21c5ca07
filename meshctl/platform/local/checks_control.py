"""MC5xxx on the local platform: the control plane's API answers as the mesh expects.

The TLS check makes the handshake a proxy makes (trusting only the trust anchors, expecting the control
plane's identity) without importing gRPC; discovery is judged from the control plane's own config dump.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.errors import MeshError
from meshctl.health.facts import CONTROL_DUMP, STATUS, listing, plural
from meshctl.health.registry import Category, Check, CheckContext, Fact, Failed, Outcome, Passed, Severity
from meshctl.platform.local.facts import LAYOUT, RECORD
from meshctl.platform.local.identity import LOCAL_ISSUER

TLS_TIMEOUT_S = 2.0
RESTART_HINT = "restart the control plane: `meshctl check --fix --yes`"


@dataclass(frozen=True)
class ControlEndpoint:
    api: str
    identity: str


def _endpoint(ctx: CheckContext) -> ControlEndpoint:
    control = next((c for c in ctx.get(RECORD).components if c.kind == "control-plane"), None)
    if control is None or "api" not in control.addresses or not control.identity:
        raise MeshError("the mesh record names no control plane API", hint="run `meshctl down && meshctl up`")
    return ControlEndpoint(control.addresses["api"], control.identity)


def _leaf(ctx: CheckContext) -> bytes:
    from meshctl.health.probe import tls_peer
    from meshctl.pki.pem import IdentityFiles

    endpoint = ctx.get(CONTROL_ENDPOINT)
    cafile = str(IdentityFiles(ctx.get(LAYOUT).identity).anchor_cert)
    return tls_peer(endpoint.api, endpoint.identity, cafile, TLS_TIMEOUT_S, ("h2",))


CONTROL_ENDPOINT: Fact[ControlEndpoint] = Fact("control plane endpoint", _endpoint)
CONTROL_LEAF: Fact[bytes] = Fact("control plane certificate", _leaf)


def api_tls(ctx: CheckContext) -> Outcome:
    import ssl

    endpoint = ctx.get(CONTROL_ENDPOINT)
    try:
        ctx.get(CONTROL_LEAF)
    except ssl.SSLCertVerificationError as exc:
        return Failed(
            f"{endpoint.api} presents a certificate that does not verify as {endpoint.identity}: "
            f"{exc.verify_message or exc.reason}",
            RESTART_HINT,
        )
    return Passed(endpoint.api)


def issued_by_current_issuer(ctx: CheckContext) -> Outcome:
    from cryptography import x509

    from meshctl.pki.keys import is_signed_by

    leaf = x509.load_der_x509_certificate(ctx.get(CONTROL_LEAF))
    issuer = ctx.get(LOCAL_ISSUER).cert
    if not is_signed_by(leaf, issuer):
        return Failed(
            "the control plane still uses the issuer it started with, not the one in $MESHCTL_HOME/identity",
            RESTART_HINT,
        )
    return Passed()


def discovery_serves(ctx: CheckContext) -> Outcome:
    from meshctl.control.config import load_control_config

    dump = ctx.get(CONTROL_DUMP)
    if dump.get("snapshot_version") is None:
        return Failed("the control plane has built no discovery snapshot yet", "see $MESHCTL_HOME/logs/control.log")
    configured = load_control_config(ctx.get(LAYOUT).control_json).services
    served = set(dump.get("services") or [])
    missing = [
        f"{s.name}.{s.namespace}:{s.port}" for s in configured if f"{s.name}.{s.namespace}:{s.port}" not in served
    ]
    if missing:
        return Failed(
            f"{plural(len(missing), 'service')} of control.json not served: {listing(missing)}",
            RESTART_HINT,
        )
    return Passed(plural(len(served), "service"))


def proxies_connected(ctx: CheckContext) -> Outcome:
    streams = int(ctx.get(CONTROL_DUMP).get("watch_streams") or 0)
    running = [
        c
        for c in ctx.get(STATUS).components
        if c.kind in ("workload", "ingress") and any(p.role == "proxy" and p.alive for p in c.processes)
    ]
    if streams < len(running):
        return Failed(
            f"{plural(streams, 'discovery stream')} open for {plural(len(running), 'proxy', 'proxies')} that run",
            "see the proxies' logs in $MESHCTL_HOME/logs (`*.proxy.log`) for discovery errors",
        )
    return Passed(plural(streams, "stream"))


CONTROL_API = Category(
    id="control-plane-api",
    name="the control plane's API",
    checks=(
        Check(
            "MC5001",
            "the control plane API presents the control plane's identity",
            RESTART_HINT,
            api_tls,
            timeout=3.0,
            requires=("MC2002", "MC4001"),
        ),
        Check(
            "MC5002",
            "the control plane's certificate comes from the current issuer",
            RESTART_HINT,
            issued_by_current_issuer,
            severity=Severity.WARNING,
            timeout=3.0,
            retry=False,  # only a restart changes the answer
            requires=("MC5001", "MC4005"),
        ),
        Check(
            "MC5003",
            "discovery serves every configured service",
            RESTART_HINT,
            discovery_serves,
            timeout=3.0,
            requires=("MC2002",),
        ),
        Check(
            "MC5004",
            "every running proxy is connected to discovery",
            "see the proxies' logs in $MESHCTL_HOME/logs for discovery errors",
            proxies_connected,
            severity=Severity.WARNING,
            timeout=3.0,
            requires=("MC2002",),
        ),
    ),
    requires=("local-platform",),
)
