"""The route names of ServiceProfiles, so `routes` lists routes that had no traffic in the window too.

Locally the profiles are the files under $MESHCTL_HOME/config that the control plane serves. A file that
does not parse is skipped: the control plane refuses it as well, so its routes label no request.
"""

from __future__ import annotations

from pathlib import Path

from meshctl.identity import TRUST_DOMAIN

ProfileRoutes = dict[tuple[str, str], tuple[str, ...]]  # (namespace, service) -> route names


def profile_routes(config_dir: Path) -> ProfileRoutes:
    """Every ServiceProfile's route names, by the (namespace, service) its name is the FQDN of."""
    from meshctl.resources import ResourceError, load_file, resource_files
    from meshctl.resources.service_profile import ServiceProfileSpec

    found: ProfileRoutes = {}
    try:
        files = resource_files(config_dir)
    except OSError:
        return found
    suffix = f".svc.{TRUST_DOMAIN}"
    for path in files:
        try:
            resources = load_file(path)
        except ResourceError:
            continue
        for resource in resources:
            if resource.kind != "ServiceProfile" or not isinstance(resource.spec, ServiceProfileSpec):
                continue
            service, _, namespace = resource.name.removesuffix(suffix).partition(".")
            found[(namespace, service)] = tuple(route.name for route in resource.spec.routes)
    return found
