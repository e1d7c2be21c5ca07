"""The local platform's catalogue: every category of `meshctl check`, in the order they run and print."""

from __future__ import annotations

from meshctl.health.registry import Category


def categories() -> list[Category]:
    from meshctl.health.checks_control import CONTROL_API
    from meshctl.health.checks_dataplane import DATA_PLANE, VERSIONS
    from meshctl.health.checks_identity import LOCAL_SOURCE, identity_category
    from meshctl.health.checks_mesh import CONFIG, EXISTENCE
    from meshctl.health.checks_platform import PRE, REACHABLE, VERSION
    from meshctl.health.checks_prometheus import prometheus_category

    return [
        REACHABLE,
        VERSION,
        PRE,
        EXISTENCE,
        CONFIG,
        identity_category(LOCAL_SOURCE, requires=("local-platform",)),
        CONTROL_API,
        prometheus_category(requires=("local-platform",)),
        VERSIONS,
        DATA_PLANE,
    ]
