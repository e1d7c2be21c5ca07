"""A ServiceProfile from an OpenAPI 3 or Swagger 2 document: one route per path and method.

Route names read like the spec ("GET /books/{id}"); a path template's `{param}` matches one path segment.
Operation extensions set the route's policy: `x-meshctl-timeout: 300ms` and `x-meshctl-retryable: true`
(Linkerd's `x-linkerd-*` spellings are accepted too, so specs written for it work unchanged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from meshctl.errors import UsageError
from meshctl.identity import service_fqdn
from meshctl.resources import API_VERSION

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{[^/{}]+\}")
_SEGMENT = "[^/]*"  # what a template parameter matches: one path segment


def path_regex(template: str) -> str:
    """The anchored-by-the-proxy regex of a path template: literals escaped, `{param}` one segment."""
    parts = []
    last = 0
    for match in _PARAM.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append(_SEGMENT)
        last = match.end()
    parts.append(re.escape(template[last:]))
    return "".join(parts)


def base_path(spec: Mapping[str, Any]) -> str:
    """Swagger 2's basePath, or the path of OpenAPI 3's first server URL ("" when there is none)."""
    base = spec.get("basePath")
    if not isinstance(base, str):
        servers = spec.get("servers")
        first = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], Mapping) else {}
        url = first.get("url", "")
        base = urlsplit(url).path if isinstance(url, str) and "{" not in url else ""
    return base.rstrip("/")


def _extension(operation: Mapping[str, Any], name: str) -> Any:
    for prefix in ("x-meshctl-", "x-linkerd-"):
        if prefix + name in operation:
            return operation[prefix + name]
    return None


def profile_from_openapi(spec: object, service: str, namespace: str, source: str) -> dict[str, Any]:
    """The ServiceProfile document (as `meshctl apply` takes it) of the service an OpenAPI spec describes."""
    if not isinstance(spec, Mapping) or not ("openapi" in spec or "swagger" in spec):
        raise UsageError(f"{source} is not an OpenAPI document", hint="expected a top-level `openapi:` or `swagger:`")
    paths = spec.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise UsageError(f"{source} has no paths", hint="an OpenAPI document lists its operations under `paths:`")
    base = base_path(spec)
    found: list[tuple[int, int, dict[str, Any]]] = []
    for template, item in paths.items():
        if not isinstance(template, str) or not template.startswith("/") or not isinstance(item, Mapping):
            continue
        full = base + template
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            route: dict[str, Any] = {
                "name": f"{method.upper()} {full}",
                "condition": {"method": method.upper(), "pathRegex": path_regex(full)},
            }
            timeout = _extension(operation, "timeout")
            if timeout is not None:
                route["timeout"] = str(timeout)
            if _extension(operation, "retryable") is True:
                route["isRetryable"] = True
            # The proxy takes the first route that matches: literal paths before templated ones, so
            # `/books/new` is not swallowed by `/books/{id}`.
            found.append((len(_PARAM.findall(full)), len(found), route))
    if not found:
        raise UsageError(f"{source} defines no operation", hint=f"expected one of {', '.join(METHODS)} under a path")
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceProfile",
        "metadata": {"name": service_fqdn(service, namespace), "namespace": namespace},
        "spec": {"routes": [route for _, _, route in sorted(found, key=lambda f: (f[0], f[1]))]},
    }
