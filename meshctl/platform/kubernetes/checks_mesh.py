"""MC21xx (the mesh is installed and running) and MC31xx (its configuration is present and valid) on
Kubernetes. Pods come from the one label-selected listing behind STATUS; deployments, CRDs and
ServiceProfiles from one list each; ConfigMaps by name. Nothing is asked per pod.
"""

from __future__ import annotations

import json
from typing import Any

from meshctl.health.facts import listing, plural
from meshctl.health.registry import Category, Check, CheckContext, Failed, Outcome, Passed
from meshctl.platform.kubernetes.api import NotFound
from meshctl.platform.kubernetes.conventions import (
    CONFIG_KEY,
    CONFIG_MAP,
    CONTROL_NS,
    CRD_GROUP,
    CRD_VERSION,
    CRD_VERSIONS,
    CRDS,
    DEPLOYMENTS,
)
from meshctl.platform.kubernetes.facts import CRDS as CRD_FACT
from meshctl.platform.kubernetes.facts import DEPLOYMENTS as DEPLOYMENT_FACT
from meshctl.platform.kubernetes.facts import NAMESPACE, api, control_object, control_pods

INSTALL_HINT = "install the mesh: `meshctl install | kubectl apply -f -`"
LOGS_HINT = f"see why: `kubectl -n {CONTROL_NS} describe pod POD` and `kubectl -n {CONTROL_NS} logs POD`"


def namespace_exists(ctx: CheckContext) -> Outcome:
    if ctx.get(NAMESPACE) is None:
        return Failed(f"namespace {CONTROL_NS} does not exist", INSTALL_HINT)
    return Passed(CONTROL_NS)


def deployments_available(ctx: CheckContext) -> Outcome:
    found = ctx.get(DEPLOYMENT_FACT)
    problems: list[str] = []
    for name in DEPLOYMENTS:
        deployment = found.get(name)
        if deployment is None:
            problems.append(f"deployment {name} does not exist")
            continue
        wanted = int((deployment.get("spec") or {}).get("replicas", 1))
        available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
        if available < wanted:
            problems.append(f"deployment {name} has {available} of {wanted} replicas available")
    if problems:
        return Failed("\n".join(problems), INSTALL_HINT if any("not exist" in p for p in problems) else LOGS_HINT)
    return Passed(", ".join(DEPLOYMENTS))


def pods_healthy(ctx: CheckContext) -> Outcome:
    problems = [problem for pod in control_pods(ctx) if (problem := pod.problem()) is not None]
    if problems:
        return Failed("\n".join(problems[:10]), LOGS_HINT)
    return Passed(plural(len(control_pods(ctx)), "pod"))


def pods_ready(ctx: CheckContext) -> Outcome:
    pods = control_pods(ctx)
    unready = [pod.not_ready() for pod in pods if not pod.ready]
    if unready:
        return Failed(f"{plural(len(unready), 'pod')} not ready: {listing(unready)}", LOGS_HINT)
    return Passed(plural(len(pods), "pod"))


def config_present(ctx: CheckContext) -> Outcome:
    try:
        config_map = control_object(ctx, "configmaps", CONFIG_MAP)
    except NotFound:
        return Failed(f"ConfigMap {CONTROL_NS}/{CONFIG_MAP} does not exist", INSTALL_HINT)
    text = (config_map.get("data") or {}).get(CONFIG_KEY)
    if text is None:
        return Failed(f"ConfigMap {CONTROL_NS}/{CONFIG_MAP} has no key {CONFIG_KEY}", INSTALL_HINT)
    try:
        document = json.loads(text)
    except ValueError as exc:
        return Failed(f"{CONFIG_MAP}/{CONFIG_KEY} is not JSON: {exc}", INSTALL_HINT)
    if not isinstance(document, dict):
        return Failed(f"{CONFIG_MAP}/{CONFIG_KEY} is not a JSON object", INSTALL_HINT)
    return Passed(f"{CONFIG_MAP}/{CONFIG_KEY}")


EXISTENCE = Category(
    id="kubernetes-mesh-existence",
    name="the mesh is installed and running in the cluster",
    checks=(
        Check("MC2100", "the control plane namespace exists", INSTALL_HINT, namespace_exists, timeout=6.0),
        Check(
            "MC2101",
            "the control plane deployments are available",
            LOGS_HINT,
            deployments_available,
            timeout=6.0,
            requires=("MC2100",),
        ),
        Check(
            "MC2102",
            "no control plane pod is unschedulable or crash-looping",
            LOGS_HINT,
            pods_healthy,
            timeout=8.0,
            requires=("MC2100",),
        ),
        Check("MC2103", "the control plane pods are ready", LOGS_HINT, pods_ready, timeout=8.0, requires=("MC2100",)),
        Check(
            "MC2104",
            "the control plane's configuration is present",
            INSTALL_HINT,
            config_present,
            timeout=6.0,
            requires=("MC2100",),
        ),
    ),
    requires=("kubernetes-api",),
)


# --- configuration ----------------------------------------------------------------------------------------


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def crds_installed(ctx: CheckContext) -> Outcome:
    missing = [name for name in CRDS if name not in ctx.get(CRD_FACT)]
    if missing:
        return Failed(f"CustomResourceDefinition {listing(missing)} is not installed", INSTALL_HINT)
    return Passed(listing(list(CRDS)))


def crds_serving(ctx: CheckContext) -> Outcome:
    problems: list[str] = []
    for name in CRDS:
        crd = ctx.get(CRD_FACT)[name]
        served = {v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")}
        if not _established(crd):
            problems.append(f"{name} is not established")
        elif (version := CRD_VERSIONS[name]) not in served:
            group = name.partition(".")[2]
            problems.append(f"{name} does not serve {group}/{version} (serves {', '.join(sorted(served))})")
    if problems:
        return Failed("\n".join(problems), "apply the CRDs of this meshctl: `meshctl install | kubectl apply -f -`")
    return Passed(f"{CRD_GROUP}/{CRD_VERSION}")


def resources_valid(ctx: CheckContext) -> Outcome:
    from meshctl.resources.fields import Problem
    from meshctl.resources.kinds import parse_document

    items = api(ctx).list(f"/apis/{CRD_GROUP}/{CRD_VERSION}/serviceprofiles")
    invalid: list[str] = []
    for item in items:
        problems: list[Problem] = []
        metadata = item.get("metadata") or {}
        document = {k: item[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in item}
        parse_document(document, problems, source=f"{metadata.get('namespace')}/{metadata.get('name')}")
        if problems:
            invalid.append(f"ServiceProfile {metadata.get('namespace')}/{metadata.get('name')}: {problems[0]}")
    if invalid:
        return Failed(
            "\n".join(invalid[:10]) + (f"\nand {len(invalid) - 10} more" if len(invalid) > 10 else ""),
            "fix them with `kubectl edit` (`meshctl apply -f` validates before writing)",
        )
    return Passed(plural(len(items), "ServiceProfile"))


CONFIG = Category(
    id="kubernetes-mesh-config",
    name="the mesh's resources in the cluster",
    checks=(
        Check(
            "MC3100", "the mesh's CustomResourceDefinitions are installed", INSTALL_HINT, crds_installed, timeout=6.0
        ),
        Check(
            "MC3101",
            "the mesh's CustomResourceDefinitions are established and serve meshctl.io/v1alpha1",
            "apply the CRDs of this meshctl: `meshctl install | kubectl apply -f -`",
            crds_serving,
            timeout=6.0,
            requires=("MC3100",),
        ),
        Check(
            "MC3102",
            "the mesh's resources in the cluster are valid",
            "fix the reported resources with `kubectl edit`",
            resources_valid,
            timeout=8.0,
            requires=("MC3101",),
        ),
    ),
    requires=("kubernetes-api",),
)
