"""MC51xx (the control plane's API), MC71xx (versions) and MC81xx (`--proxy`: the data plane) on Kubernetes.

Readiness and versions come from the pods' listing (the proxy container's readiness, the
`meshctl.io/proxy-version` annotation) and the deployments' version label, so a thousand proxies cost no
request more than ten. The control plane's admin endpoint is asked through the API server's service proxy.
"""

from __future__ import annotations

from dataclasses import replace

from meshctl.health.checks_prometheus import METRICS_PRESENT
from meshctl.health.facts import listing, plural
from meshctl.health.registry import Category, Check, CheckContext, Failed, Mode, Outcome, Passed
from meshctl.platform.kubernetes.conventions import (
    CONTROL_ADMIN_PORT,
    CONTROL_DEPLOYMENT,
    CONTROL_NS,
    DEPLOYMENTS,
    PROXY_CONTAINER,
    VERSION_LABEL,
)
from meshctl.platform.kubernetes.facts import API_TIMEOUT_S, api, meshed_pods
from meshctl.platform.kubernetes.facts import DEPLOYMENTS as DEPLOYMENT_FACT
from meshctl.platform.kubernetes.pods import Pod
from meshctl.platform.kubernetes.relay import service_proxy_path

LOGS_HINT = f"see the control plane's log: `kubectl -n {CONTROL_NS} logs deploy/{CONTROL_DEPLOYMENT}`"
UPGRADE_HINT = "upgrade the control plane: `meshctl install | kubectl apply -f -`"
PROXY_UPGRADE_HINT = "restart the workloads to inject the current proxy: `kubectl -n NS rollout restart deploy/NAME`"


def endpoints_ready(ctx: CheckContext) -> Outcome:
    slices = api(ctx).list(
        f"/apis/discovery.k8s.io/v1/namespaces/{CONTROL_NS}/endpointslices",
        {"labelSelector": f"kubernetes.io/service-name={CONTROL_DEPLOYMENT}"},
    )
    ready = [
        address
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
        for address in endpoint.get("addresses") or []
    ]
    if not ready:
        return Failed(f"service {CONTROL_NS}/{CONTROL_DEPLOYMENT} has no ready endpoint", LOGS_HINT)
    return Passed(plural(len(ready), "endpoint"))


def admin_ready(ctx: CheckContext) -> Outcome:
    path = service_proxy_path(CONTROL_NS, CONTROL_DEPLOYMENT, CONTROL_ADMIN_PORT) + "/ready"
    answer = api(ctx).raw(path, timeout_s=API_TIMEOUT_S)  # KubeError (the status) when it is not ready
    return Passed(answer.decode("utf-8", "replace").strip()[:40])


CONTROL_API = Category(
    id="kubernetes-control-plane-api",
    name="the control plane's API in the cluster",
    checks=(
        Check(
            "MC5100",
            "the control plane's service has ready endpoints",
            LOGS_HINT,
            endpoints_ready,
            timeout=6.0,
            requires=("MC2100",),
        ),
        Check(
            "MC5101",
            "the control plane's admin endpoint reports ready",
            LOGS_HINT,
            admin_ready,
            timeout=6.0,
            requires=("MC5100",),
        ),
    ),
    requires=("kubernetes-api",),
)


# --- versions ---------------------------------------------------------------------------------------------


def control_plane_version(ctx: CheckContext) -> Outcome:
    cli = ctx.options.cli_version
    found = ctx.get(DEPLOYMENT_FACT)
    wrong = [
        f"{name} runs {version or 'an unknown version'}"
        for name in DEPLOYMENTS
        if name in found and (version := (found[name]["metadata"].get("labels") or {}).get(VERSION_LABEL)) != cli
    ]
    if wrong:
        return Failed(f"{listing(wrong)}; the CLI is {cli}", UPGRADE_HINT)
    return Passed(cli)


def _wrong_versions(pods: list[Pod], cli: str) -> list[str]:
    return [f"{p.ref} runs {p.proxy_version or 'an unknown version'}" for p in pods if p.proxy_version != cli]


def proxies_version(ctx: CheckContext) -> Outcome:
    pods, cli = meshed_pods(ctx), ctx.options.cli_version
    wrong = _wrong_versions(pods, cli)
    if wrong:
        return Failed(
            f"{plural(len(wrong), 'proxy', 'proxies')}: {listing(wrong)}; the CLI is {cli}", PROXY_UPGRADE_HINT
        )
    return Passed(f"{plural(len(pods), 'proxy', 'proxies')} on {cli}")


VERSIONS = Category(
    id="kubernetes-mesh-version",
    name="the CLI, the control plane and the proxies run one version",
    checks=(
        Check(
            "MC7100",
            "the control plane deployments carry the CLI's version",
            UPGRADE_HINT,
            control_plane_version,
            timeout=6.0,
            retry=False,
            requires=("MC2101",),
        ),
        Check(
            "MC7101",
            "every meshed pod's proxy carries the CLI's version",
            PROXY_UPGRADE_HINT,
            proxies_version,
            timeout=8.0,
        ),
    ),
    requires=("kubernetes-api",),
)


# --- data plane -------------------------------------------------------------------------------------------


def _where(ctx: CheckContext) -> str:
    return f"namespace {ctx.options.namespace}" if ctx.options.namespace else "the cluster"


def has_meshed_pods(ctx: CheckContext) -> Outcome:
    pods = meshed_pods(ctx)
    if not pods:
        return Failed(
            f"{_where(ctx)} has no meshed pods",
            "inject the proxy: `kubectl get deploy -o yaml | meshctl inject - | kubectl apply -f -`",
        )
    return Passed(f"{plural(len(pods), 'pod')} in {_where(ctx)}")


def proxies_ready(ctx: CheckContext) -> Outcome:
    problems = []
    for pod in meshed_pods(ctx):
        proxy = pod.proxy
        if proxy is not None and not proxy.ready:
            problems.append(pod.problem() or f"{pod.ref}: container {PROXY_CONTAINER} is not ready")
    if problems:
        more = f"\nand {len(problems) - 10} more" if len(problems) > 10 else ""
        return Failed(
            f"{plural(len(problems), 'proxy', 'proxies')} not ready:\n" + "\n".join(problems[:10]) + more,
            f"see why: `kubectl -n NS logs POD -c {PROXY_CONTAINER}`",
        )
    return Passed()


def dataplane_version(ctx: CheckContext) -> Outcome:
    cli = ctx.options.cli_version
    wrong = _wrong_versions(meshed_pods(ctx), cli)
    if wrong:
        return Failed(f"{listing(wrong)}; the CLI is {cli}", PROXY_UPGRADE_HINT)
    return Passed(cli)


DATA_PLANE = Category(
    id="kubernetes-data-plane",
    name="the data plane's proxies in the cluster",
    checks=(
        Check(
            "MC8100",
            "the cluster (or -n's namespace) has meshed pods",
            "inject the proxy into the workloads with `meshctl inject`",
            has_meshed_pods,
            timeout=8.0,
        ),
        Check(
            "MC8101",
            "every meshed pod's proxy container is ready",
            f"see why: `kubectl -n NS logs POD -c {PROXY_CONTAINER}`",
            proxies_ready,
            timeout=8.0,
            requires=("MC8100",),
        ),
        replace(METRICS_PRESENT, requires=("MC8100", "MC6002")),
        Check(
            "MC8102",
            "every meshed pod's proxy in the namespace carries the CLI's version",
            PROXY_UPGRADE_HINT,
            dataplane_version,
            timeout=8.0,
            requires=("MC8100",),
        ),
    ),
    requires=("kubernetes-api",),
    modes=frozenset({Mode.PROXY}),
)
