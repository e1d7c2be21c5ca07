"""The demo's ServiceProfiles, written to $MESHCTL_HOME/config/ by `up` so every route has a name.

A file that already exists is kept: it may hold the user's edits (new timeouts, retries ...).
"""

from __future__ import annotations

from typing import Any

from meshctl.identity import service_fqdn
from meshctl.platform.local.state import Layout, write_atomic
from meshctl.resources import API_VERSION, parse_text

SERVER_ERRORS = [{"condition": {"status": {"min": 500, "max": 599}}, "isFailure": True}]
RATINGS_METHOD = "/booksapp.ratings.v1.Ratings/{}"

# service -> routes as (name, method, path regex); names are what `meshctl routes` shows.
DEMO_ROUTES: dict[str, list[tuple[str, str, str]]] = {
    "webapp": [
        ("GET /", "GET", "/"),
        ("GET /books/{id}", "GET", r"/books/\d+"),
        ("GET /authors/{id}", "GET", r"/authors/\d+"),
        ("POST /books", "POST", "/books"),
        ("POST /books/{id}/rate", "POST", r"/books/\d+/rate"),
    ],
    "books": [
        ("GET /books", "GET", "/books"),
        ("GET /books/{id}", "GET", r"/books/\d+"),
        ("POST /books", "POST", "/books"),  # fails at the configured rate
        ("POST /books/{id}/ratings", "POST", r"/books/\d+/ratings"),
    ],
    "authors": [
        ("GET /authors", "GET", "/authors"),
        ("GET /authors/{id}", "GET", r"/authors/\d+"),  # the slow one
        ("HEAD /authors/{id}", "HEAD", r"/authors/\d+"),
    ],
    "ratings": [
        ("GetRating", "POST", RATINGS_METHOD.format("GetRating").replace(".", r"\.")),
        ("RateBook", "POST", RATINGS_METHOD.format("RateBook").replace(".", r"\.")),
    ],
}


def profile_document(service: str, namespace: str) -> dict[str, Any]:
    routes = [
        {
            "name": name,
            "condition": {"method": method, "pathRegex": regex},
            "responseClasses": SERVER_ERRORS,
        }
        for name, method, regex in DEMO_ROUTES[service]
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceProfile",
        "metadata": {"name": service_fqdn(service, namespace), "namespace": namespace},
        "spec": {"routes": routes},
    }


def profile_filename(service: str, namespace: str) -> str:
    """The file `meshctl apply` would write for the same profile, so applying an edit replaces ours."""
    return f"serviceprofile-{namespace}-{service_fqdn(service, namespace)}.yaml"


def render_profile(service: str, namespace: str) -> str:
    """The profile as `meshctl apply` stores it (validated on the way: it must be what apply accepts)."""
    import yaml

    (resource,) = parse_text(yaml.safe_dump(profile_document(service, namespace)), f"{service} profile")
    return yaml.safe_dump(resource.to_document(), sort_keys=False, allow_unicode=True)


def write_demo_profiles(layout: Layout, namespace: str) -> tuple[list[str], list[str]]:
    """Write the profiles that are missing; return (written, kept) paths."""
    written: list[str] = []
    kept: list[str] = []
    for service in DEMO_ROUTES:
        path = layout.config / profile_filename(service, namespace)
        if path.exists():
            kept.append(str(path))
            continue
        write_atomic(path, render_profile(service, namespace))
        written.append(str(path))
    return written, kept
