"""The demo's ServiceProfiles: valid resources, named routes, and user edits are kept."""

from __future__ import annotations

from pathlib import Path

from meshctl.platform.local.profiles import DEMO_ROUTES, profile_filename, render_profile, write_demo_profiles
from meshctl.platform.local.state import Layout
from meshctl.proxy.policy.route import compile_profile
from meshctl.resources import parse_text


def test_every_profile_is_a_valid_resource() -> None:
    for service in DEMO_ROUTES:
        (resource,) = parse_text(render_profile(service, "booksapp"))
        assert resource.kind == "ServiceProfile"
        assert resource.api_version == "meshctl.io/v1alpha1"
        assert resource.name == f"{service}.booksapp.svc.cluster.local"


def test_routes_have_the_names_the_demo_relies_on() -> None:
    names = {service: [r[0] for r in routes] for service, routes in DEMO_ROUTES.items()}
    assert {"GET /", "GET /books/{id}", "POST /books"} <= set(names["webapp"])
    assert {"GET /books", "GET /books/{id}", "POST /books"} <= set(names["books"])
    assert "GET /authors/{id}" in names["authors"]
    assert {"GetRating", "RateBook"} <= set(names["ratings"])


def test_requests_of_the_demo_map_to_their_routes() -> None:
    def route(service: str, method: str, path: str) -> str:
        (resource,) = parse_text(render_profile(service, "booksapp"))
        return compile_profile(resource.spec_json()).route_for(method, path)

    assert route("webapp", "GET", "/") == "GET /"
    assert route("webapp", "GET", "/books/12") == "GET /books/{id}"
    assert route("webapp", "POST", "/books/12/rate") == "POST /books/{id}/rate"
    assert route("books", "POST", "/books") == "POST /books"
    assert route("authors", "GET", "/authors/3") == "GET /authors/{id}"
    assert route("ratings", "POST", "/booksapp.ratings.v1.Ratings/GetRating") == "GetRating"
    assert route("books", "DELETE", "/books/1") == "[DEFAULT]"


def test_existing_profiles_are_kept(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    edited = layout.config / profile_filename("books", "booksapp")
    edited.write_text("# my edit\n")
    written, kept = write_demo_profiles(layout, "booksapp")
    assert kept == [str(edited)] and edited.read_text() == "# my edit\n"
    assert len(written) == len(DEMO_ROUTES) - 1
    again_written, again_kept = write_demo_profiles(layout, "booksapp")
    assert again_written == [] and set(again_kept) == set(written + kept)


def test_file_name_is_the_one_apply_uses() -> None:
    from meshctl.cli.apply import resource_filename

    for service in DEMO_ROUTES:
        (resource,) = parse_text(render_profile(service, "booksapp"))
        assert profile_filename(service, "booksapp") == resource_filename(resource)
