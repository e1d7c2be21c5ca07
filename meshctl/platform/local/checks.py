"""The local platform's catalogue: every category of `meshctl check`, in the order they run and print.

Identity (MC4001-MC4009), Prometheus (MC6xxx) and MC8004 are the shared checks of meshctl/health, fed with
this platform's facts; the other categories are the local platform's own (this package's checks_*.py).
"""

from __future__ import annotations

from meshctl.health.registry import Category


def categories() -> list[Category]:
    from meshctl.health.checks_identity import identity_category
    from meshctl.health.checks_prometheus import prometheus_category
    from meshctl.platform.local.checks_control import CONTROL_API
    from meshctl.platform.local.checks_dataplane import DATA_PLANE, VERSIONS
    from meshctl.platform.local.checks_mesh import CONFIG, EXISTENCE
    from meshctl.platform.local.checks_platform import PRE, REACHABLE, VERSION
    from meshctl.platform.local.identity import LOCAL_SOURCE

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
