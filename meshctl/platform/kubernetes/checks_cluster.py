"""MC11xx: the cluster itself. The kubeconfig and the API server (reachable, credentials accepted), the
server's version, and with `--pre` whether the mesh can be installed: its namespace is free and the
current user may create everything `meshctl install` creates (one SelfSubjectAccessReview per permission,
a fixed number of requests).
"""

from __future__ import annotations

import re

from meshctl.health.facts import listing
from meshctl.health.probe import concurrently
from meshctl.health.registry import Category, Check, CheckContext, CheckFunction, Failed, Mode, Outcome, Passed
from meshctl.platform.kubernetes.conventions import CONTROL_NS, MIN_KUBERNETES
from meshctl.platform.kubernetes.facts import NAMESPACE, VERSION, api, kube_platform

CONTEXT_HINT = "set KUBECONFIG or pick a context with --context (`kubectl config get-contexts`)"
REACH_HINT = "check that the cluster runs and is reachable from here: `kubectl cluster-info`"
CREDENTIALS_HINT = "log in to the cluster again (refresh the kubeconfig's credentials) or use another --context"
RBAC_HINT = "install with a cluster-admin context, or ask for the missing RBAC permissions"

# (verb, group, resource, namespace) of what `meshctl install` creates.
CLUSTER_WIDE = (
    ("create", "", "namespaces", None),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", None),
    ("create", "rbac.authorization.k8s.io", "clusterroles", None),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
    ("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None),
)
NAMESPACED = tuple(
    ("create", group, resource, CONTROL_NS)
    for group, resource in (
        ("", "serviceaccounts"),
        ("", "services"),
        ("", "configmaps"),
        ("", "secrets"),
        ("apps", "deployments"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
    )
)


def kubeconfig(ctx: CheckContext) -> Outcome:
    client = kube_platform(ctx).api  # ConfigError (message and hint) when the kubeconfig cannot be used
    return Passed(f"context {client.context} ({client.server})")


def reachable(ctx: CheckContext) -> Outcome:
    version = ctx.get(VERSION)
    return Passed(str(version.get("gitVersion") or "answered /version"))


def _allowed(ctx: CheckContext, verb: str, group: str, resource: str, namespace: str | None) -> bool:
    attributes = {"verb": verb, "group": group, "resource": resource}
    if namespace is not None:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = api(ctx).post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, timeout_s=4.0)
    return bool((answer.get("status") or {}).get("allowed"))


def credentials(ctx: CheckContext) -> Outcome:
    # Any authenticated user may review their own access; a 401 here means the credentials are rejected.
    allowed = _allowed(ctx, "list", "", "pods", None)
    return Passed("may list pods" if allowed else "authenticated")


def server_version(ctx: CheckContext) -> Outcome:
    version = ctx.get(VERSION)
    major = re.match(r"\d+", str(version.get("major") or ""))
    minor = re.match(r"\d+", str(version.get("minor") or ""))  # "30+" on some providers
    if major is None or minor is None:
        return Failed(f"the API server reports no version it can be judged by: {version}")
    found = (int(major[0]), int(minor[0]))
    wanted = ".".join(map(str, MIN_KUBERNETES))
    if found < MIN_KUBERNETES:
        return Failed(
            f"Kubernetes {found[0]}.{found[1]} is older than {wanted}", f"upgrade the cluster to {wanted} or newer"
        )
    return Passed(str(version.get("gitVersion") or f"{found[0]}.{found[1]}"))


def namespace_free(ctx: CheckContext) -> Outcome:
    if ctx.get(NAMESPACE) is not None:
        return Failed(
            f"namespace {CONTROL_NS} already exists",
            "the mesh may be installed already: run `meshctl check`; or delete the namespace first",
        )
    return Passed()


def _permissions(rules: tuple[tuple[str, str, str, str | None], ...]) -> CheckFunction:
    def run(ctx: CheckContext) -> Outcome:
        answers = concurrently(lambda rule: _allowed(ctx, *rule), rules)
        missing = [
            f"{verb} {resource}{'.' + group if group else ''}{' in ' + namespace if namespace else ''}"
            for (verb, group, resource, namespace), allowed in zip(rules, answers, strict=True)
            if not allowed
        ]
        if missing:
            return Failed(f"not allowed to {listing(missing, 7)}", RBAC_HINT)
        return Passed(f"{len(rules)} permissions")

    return run


API = Category(
    id="kubernetes-api",
    name="the Kubernetes API",
    checks=(
        # 6 s: the first attempt imports the kubernetes client, seconds on a busy machine.
        Check("MC1100", "the kubeconfig names a usable context", CONTEXT_HINT, kubeconfig, timeout=6.0, retry=False),
        Check("MC1101", "the Kubernetes API can be reached", REACH_HINT, reachable, timeout=6.0, requires=("MC1100",)),
        Check(
            "MC1102",
            "the Kubernetes API accepts the credentials",
            CREDENTIALS_HINT,
            credentials,
            timeout=6.0,
            requires=("MC1101",),
        ),
    ),
    modes=frozenset({Mode.PRE, Mode.INSTALLED}),
)

VERSION_CATEGORY = Category(
    id="kubernetes-version",
    name="the Kubernetes version",
    checks=(
        Check(
            "MC1110",
            "the Kubernetes API is version 1.27 or newer",
            "upgrade the cluster to Kubernetes 1.27 or newer",
            server_version,
            timeout=6.0,
            retry=False,
        ),
    ),
    requires=("kubernetes-api",),
    modes=frozenset({Mode.PRE, Mode.INSTALLED}),
)

PRE = Category(
    id="kubernetes-pre-install",
    name="can `meshctl install` install the mesh here",
    checks=(
        Check(
            "MC1120",
            "the control plane namespace does not exist yet",
            "run `meshctl check` if the mesh is installed; otherwise delete namespace meshctl-system",
            namespace_free,
            timeout=6.0,
        ),
        Check(
            "MC1121",
            "the user may create the mesh's cluster-wide resources",
            RBAC_HINT,
            _permissions(CLUSTER_WIDE),
            timeout=8.0,
        ),
        Check(
            "MC1122",
            "the user may create the mesh's resources in its namespace",
            RBAC_HINT,
            _permissions(NAMESPACED),
            timeout=8.0,
        ),
    ),
    requires=("kubernetes-api",),
    modes=frozenset({Mode.PRE}),
)
