"""The demo's MeshIngress: the ingress exposes webapp (any host, every path) and nothing else.

Written to $MESHCTL_HOME/config/ by `up` beside the ServiceProfiles, under the name `meshctl apply`
gives it, so applying an edited MeshIngress replaces ours. A file that already exists is kept.
"""

from __future__ import annotations

from typing import Any

from meshctl.platform.local.state import Layout, write_atomic
from meshctl.platform.local.topology import DEMO_SERVICES
from meshctl.resources import API_VERSION, parse_text

INGRESS_NAME = "booksapp"


def ingress_document(namespace: str) -> dict[str, Any]:
    webapp = DEMO_SERVICES[0]
    return {
        "apiVersion": API_VERSION,
        "kind": "MeshIngress",
        "metadata": {"name": INGRESS_NAME, "namespace": namespace},
        "spec": {"rules": [{"paths": [{"pathPrefix": "/", "service": webapp.name, "port": webapp.port}]}]},
    }


def ingress_filename(namespace: str) -> str:
    return f"meshingress-{namespace}-{INGRESS_NAME}.yaml"


def write_demo_ingress(layout: Layout, namespace: str) -> str | None:
    """Write the demo's MeshIngress unless one is there; the path written, or None when kept."""
    import yaml

    path = layout.config / ingress_filename(namespace)
    if path.exists():
        return None
    (resource,) = parse_text(yaml.safe_dump(ingress_document(namespace)), "demo ingress")  # what apply accepts
    write_atomic(path, yaml.safe_dump(resource.to_document(), sort_keys=False, allow_unicode=True))
    return str(path)
