"""MC2xxx (the mesh is installed and running) and MC3xxx (its configuration is valid) on the local platform.

Liveness and readiness come from the platform's status (one /proc read and one /ready probe per
component, concurrently); configuration checks parse the files the processes read, with the parsers
those processes use, so a check passes exactly when a restart would accept the file.
"""

from __future__ import annotations

from pathlib import Path

from meshctl.health.facts import CONTROL_DUMP, STATUS, listing, plural
from meshctl.health.registry import Category, Check, CheckContext, Failed, Outcome, Passed, Severity
from meshctl.platform.local.facts import LAYOUT, RECORD

FIX_HINT = "restart it: `meshctl check --fix --yes` (or `meshctl down && meshctl up`)"


def _component(ctx: CheckContext, kind: str) -> tuple[str, str, bool, bool | None] | None:
    """(pod, detail, processes alive, ready) of the first component of `kind`."""
    for component in ctx.get(STATUS).components:
        if component.kind == kind:
            alive = bool(component.processes) and all(p.alive for p in component.processes)
            return component.pod, component.detail, alive, component.ready
    return None


def control_running(ctx: CheckContext) -> Outcome:
    found = _component(ctx, "control-plane")
    if found is None:
        return Failed("the mesh record lists no control plane", "run `meshctl down && meshctl up`")
    pod, detail, alive, _ = found
    return Passed(pod) if alive else Failed(f"{pod}: {detail}", FIX_HINT)


def control_ready(ctx: CheckContext) -> Outcome:
    found = _component(ctx, "control-plane")
    if found is None:
        return Failed("the mesh record lists no control plane")
    pod, detail, _, ready = found
    if not ready:
        return Failed(f"{pod}: {detail or 'not ready'}", "see its log: `$MESHCTL_HOME/logs/control.log`")
    return Passed()


def processes_running(ctx: CheckContext) -> Outcome:
    """Every app, proxy and traffic process (the control plane and Prometheus have checks of their own)."""
    components = [c for c in ctx.get(STATUS).components if c.kind in ("workload", "ingress", "traffic")]
    down = [f"{c.pod}: {p.role} (pid {p.pid}) is not running" for c in components for p in c.processes if not p.alive]
    if down:
        return Failed("\n".join(down[:10] + ([f"and {len(down) - 10} more"] if len(down) > 10 else [])), FIX_HINT)
    count = sum(len(c.processes) for c in components)
    return Passed(plural(count, "process", "processes"))


def configuration_present(ctx: CheckContext) -> Outcome:
    layout, record = ctx.get(LAYOUT), ctx.get(RECORD)
    wanted: list[Path] = [layout.control_json, layout.prometheus_yml]
    for component in record.components:
        if any(p.role == "proxy" for p in component.processes):
            wanted += [layout.proxy_config(component.pod), layout.token(component.pod)]
    missing = [str(path) for path in wanted if not path.is_file()]
    if missing:
        return Failed(
            f"{plural(len(missing), 'file')} missing: {listing(missing, 3)}",
            "`meshctl down && meshctl up` writes the configuration again",
        )
    return Passed(plural(len(wanted), "file"))


EXISTENCE = Category(
    id="mesh-existence",
    name="the mesh is installed and running",
    checks=(
        Check("MC2001", "the control plane is running", FIX_HINT, control_running, timeout=3.0),
        Check(
            "MC2002",
            "the control plane is ready",
            "see the control plane's log in $MESHCTL_HOME/logs/control.log",
            control_ready,
            timeout=3.0,
            requires=("MC2001",),
        ),
        Check("MC2003", "every process of the mesh is running", FIX_HINT, processes_running, timeout=3.0),
        Check(
            "MC2004",
            "the mesh's configuration files are present",
            "`meshctl down && meshctl up` writes the configuration again",
            configuration_present,
            timeout=2.0,
        ),
    ),
    requires=("local-platform",),
)


# --- configuration ----------------------------------------------------------------------------------------


def control_config_valid(ctx: CheckContext) -> Outcome:
    from meshctl.control.config import load_control_config

    config = load_control_config(ctx.get(LAYOUT).control_json)  # ConfigError names the field
    return Passed(f"{plural(len(config.services), 'service')}, {plural(len(config.tokens), 'token')}")


def proxy_configs_valid(ctx: CheckContext) -> Outcome:
    from meshctl.errors import ConfigError
    from meshctl.proxy.config import load_proxy_config

    layout, record = ctx.get(LAYOUT), ctx.get(RECORD)
    pods = [c for c in record.components if any(p.role == "proxy" for p in c.processes)]
    problems: list[str] = []
    for component in pods:
        try:
            config = load_proxy_config(layout.proxy_config(component.pod))
        except ConfigError as exc:
            problems.append(exc.message)
            continue
        admin = component.addresses.get("admin")
        if admin is not None and str(config.admin.listen) != admin:
            problems.append(f"{component.pod}: admin {config.admin.listen} in its config, {admin} in mesh.json")
    if problems:
        return Failed("\n".join(problems), "fix the file and restart the proxy, or `meshctl down && meshctl up`")
    return Passed(plural(len(pods), "proxy config"))


def resources_valid(ctx: CheckContext) -> Outcome:
    from meshctl.errors import ConfigError
    from meshctl.resources.loader import check_unique, load_file, resource_files

    directory = ctx.get(LAYOUT).config
    if not directory.is_dir():
        return Passed("no resources")
    problems: list[str] = []
    resources = []
    for path in resource_files(directory):
        try:
            resources += load_file(path, path.name)
        except ConfigError as exc:
            problems.append(exc.message)
    try:
        check_unique(resources)
    except ConfigError as exc:
        problems.append(exc.message)
    if problems:
        return Failed(
            "\n".join(problems),
            f"fix the files in {directory} (the control plane keeps serving their last good version)",
        )
    return Passed(plural(len(resources), "resource"))


def resources_served(ctx: CheckContext) -> Outcome:
    invalid = ctx.get(CONTROL_DUMP).get("invalid_files") or {}
    if invalid:
        lines = [f"{Path(path).name}: {reason}" for path, reason in sorted(invalid.items())]
        return Failed(
            "the control plane serves the last good version of "
            + plural(len(lines), "file")
            + ":\n"
            + "\n".join(lines),
            "fix the files; the control plane picks them up within a second",
        )
    return Passed()


CONFIG = Category(
    id="mesh-config",
    name="the mesh's configuration is valid",
    checks=(
        Check(
            "MC3001",
            "the control plane configuration is valid",
            "fix control.json, or `meshctl down && meshctl up` to write it again",
            control_config_valid,
            timeout=3.0,
        ),
        Check(
            "MC3002",
            "every proxy configuration is valid",
            "fix the proxy's config file, or `meshctl down && meshctl up` to write it again",
            proxy_configs_valid,
            timeout=3.0,
        ),
        Check(
            "MC3003",
            "the mesh's resources are valid",
            "fix the reported files in $MESHCTL_HOME/config (`meshctl apply -f` validates before writing)",
            resources_valid,
            timeout=3.0,
        ),
        Check(
            "MC3004",
            "the control plane serves every resource file",
            "fix the reported files; the control plane picks them up within a second",
            resources_served,
            severity=Severity.WARNING,
            timeout=3.0,
            requires=("MC2002",),
        ),
    ),
    requires=("local-platform",),
)
