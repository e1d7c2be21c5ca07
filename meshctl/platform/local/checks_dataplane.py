"""MC7xxx (the CLI, the control plane and the proxies run one version) and MC8xxx (`--proxy`: the data
plane of a namespace, or of the whole mesh) on the local platform.

Every proxy's admin endpoint is asked once, concurrently (PROXY_ANSWERS); the certificate check makes the
mTLS handshake a peer proxy makes, trusting only the current trust anchors.
"""

from __future__ import annotations

from meshctl.health.checks_prometheus import METRICS_PRESENT
from meshctl.health.facts import CONTROL_VERSION, PROXIES, PROXY_ANSWERS, ProxyAnswer, listing, plural, selected
from meshctl.health.probe import concurrently
from meshctl.health.registry import Category, Check, CheckContext, Failed, Mode, Outcome, Passed
from meshctl.platform.local.facts import LAYOUT, RECORD

TLS_TIMEOUT_S = 2.0
UPGRADE_HINT = "restart it with this meshctl: `meshctl check --fix --yes` (or `meshctl down && meshctl up`)"


# --- versions ---------------------------------------------------------------------------------------------


def control_version(ctx: CheckContext) -> Outcome:
    version, cli = ctx.get(CONTROL_VERSION), ctx.options.cli_version
    if version is None:
        return Failed("the control plane's /metrics has no control_build_info")
    if version != cli:
        return Failed(f"the control plane runs {version}, the CLI is {cli}", UPGRADE_HINT)
    return Passed(version)


def _version_mismatches(answers: list[ProxyAnswer], cli: str) -> list[str]:
    return [
        f"{a.name} runs {a.version or 'an unknown version'}" for a in answers if a.error is None and a.version != cli
    ]


def proxies_version(ctx: CheckContext) -> Outcome:
    answers, cli = ctx.get(PROXY_ANSWERS), ctx.options.cli_version
    wrong = _version_mismatches(answers, cli)
    if wrong:
        return Failed(f"{listing(wrong)}; the CLI is {cli}", UPGRADE_HINT)
    silent = [a for a in answers if a.error is not None]
    note = f" ({plural(len(silent), 'proxy', 'proxies')} did not answer: see MC2003)" if silent else ""
    return Passed(f"{plural(len(answers) - len(silent), 'proxy', 'proxies')} on {cli}{note}")


VERSIONS = Category(
    id="mesh-version",
    name="the CLI, the control plane and the proxies run one version",
    checks=(
        Check(
            "MC7001",
            "the control plane runs the CLI's version",
            UPGRADE_HINT,
            control_version,
            timeout=3.0,
            requires=("MC2002",),
        ),
        Check("MC7002", "every proxy runs the CLI's version", UPGRADE_HINT, proxies_version, timeout=3.0),
    ),
    requires=("local-platform",),
)


# --- data plane -------------------------------------------------------------------------------------------


def _chosen(ctx: CheckContext) -> list[ProxyAnswer]:
    return selected_answers(ctx, ctx.get(PROXY_ANSWERS))


def selected_answers(ctx: CheckContext, answers: list[ProxyAnswer]) -> list[ProxyAnswer]:
    chosen = {(p.namespace, p.pod) for p in selected(ctx, [a.proxy for a in answers])}
    return [a for a in answers if (a.proxy.namespace, a.proxy.pod) in chosen]


def namespace_meshed(ctx: CheckContext) -> Outcome:
    proxies = selected(ctx, ctx.get(PROXIES))
    where = f"namespace {ctx.options.namespace}" if ctx.options.namespace else "the mesh"
    if not proxies:
        return Failed(f"{where} has no meshed pods", "`meshctl status` lists the pods of the mesh")
    return Passed(f"{plural(len(proxies), 'proxy', 'proxies')} in {where}")


def proxies_ready(ctx: CheckContext) -> Outcome:
    problems = [
        f"{a.name}: {a.error}" if a.error is not None else f"{a.name}: /ready does not answer 200"
        for a in _chosen(ctx)
        if not a.ready
    ]
    if problems:
        return Failed("\n".join(problems[:10]), "a dead proxy is restarted by `meshctl check --fix --yes`")
    return Passed()


def _certificate_problem(ctx: CheckContext, answer: ProxyAnswer) -> str | None:
    """None when the proxy's certificate chains to the current trust anchors for its identity."""
    import ssl

    from meshctl.errors import UnreachableError
    from meshctl.health.probe import tls_peer
    from meshctl.pki.pem import IdentityFiles

    component = ctx.get(RECORD).component(answer.proxy.pod)
    inbound = component.addresses.get("inbound") if component else None
    if inbound is None:
        return None  # the ingress has no mTLS listener to ask; its peers verify it on every request
    cafile = str(IdentityFiles(ctx.get(LAYOUT).identity).anchor_cert)
    try:
        tls_peer(inbound, answer.proxy.identity, cafile, TLS_TIMEOUT_S, ("http/1.1",))
    except ssl.SSLCertVerificationError as exc:
        return f"{answer.name}: {exc.verify_message or exc.reason}"
    except UnreachableError as exc:
        return f"{answer.name}: {exc.message}"
    return None


def certificates_chain(ctx: CheckContext) -> Outcome:
    ready = [a for a in _chosen(ctx) if a.ready]
    problems = [p for p in concurrently(lambda a: _certificate_problem(ctx, a), ready) if p]
    if problems:
        return Failed(
            "\n".join(problems[:10]),
            "the proxies renew their certificates from the control plane; restart them to renew now: "
            "`meshctl down && meshctl up`",
        )
    return Passed(plural(len(ready), "proxy", "proxies"))


def dataplane_version(ctx: CheckContext) -> Outcome:
    cli = ctx.options.cli_version
    wrong = _version_mismatches(_chosen(ctx), cli)
    if wrong:
        return Failed(f"{listing(wrong)}; the CLI is {cli}", UPGRADE_HINT)
    return Passed(cli)


DATA_PLANE = Category(
    id="data-plane",
    name="the data plane's proxies",
    checks=(
        Check(
            "MC8001",
            "the data plane has meshed pods",
            "`meshctl status` lists the pods of the mesh",
            namespace_meshed,
            timeout=3.0,
            retry=False,
        ),
        Check(
            "MC8002",
            "data plane proxies are ready",
            "a dead proxy is restarted by `meshctl check --fix --yes`",
            proxies_ready,
            timeout=4.0,
            requires=("MC8001",),
        ),
        Check(
            "MC8003",
            "data plane proxies' certificates chain to the trust anchor",
            "restart the proxies to renew their certificates: `meshctl down && meshctl up`",
            certificates_chain,
            timeout=4.0,
            requires=("MC8002", "MC4001"),
        ),
        METRICS_PRESENT,
        Check(
            "MC8005",
            "data plane proxies run the CLI's version",
            UPGRADE_HINT,
            dataplane_version,
            timeout=4.0,
            requires=("MC8001",),
        ),
    ),
    requires=("local-platform",),
    modes=frozenset({Mode.PROXY}),
)
