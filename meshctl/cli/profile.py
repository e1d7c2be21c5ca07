"""`meshctl profile`: write the ServiceProfile of a service from its OpenAPI (or Swagger) spec, or
from the requests it receives (`--tap TARGET --tap-duration 10s`).

The profile is validated as `meshctl apply` would, then printed (YAML, or JSON with -o json), so
`meshctl profile books --open-api books.yaml -n booksapp | meshctl apply -f -` names every route.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.errors import MeshError, UsageError

MAX_SPEC_BYTES = 8 * 1024 * 1024


def _read_spec(path: str) -> object:
    import yaml

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            file = Path(path)
            if file.stat().st_size > MAX_SPEC_BYTES:
                raise UsageError(f"{path} is larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB")
            text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read {path}: {reason}") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is neither JSON nor YAML: {str(exc).splitlines()[0]}") from None


def _profile_from_tap(cli: CliContext, service: str, namespace: str, target: str, duration: str) -> dict[str, Any]:
    """Tap TARGET for `duration`, keeping requests to the service, and make a route of each path seen."""
    from meshctl.cli.tapsession import Session, observe_request, parse_seconds, tap_targets
    from meshctl.tapping.filter import parse_filter
    from meshctl.tapping.profile import profile_from_tap
    from meshctl.targets import parse_target

    seconds = parse_seconds(duration, "--tap-duration")
    keep = parse_filter(f"to=deploy/{service}", namespace)
    targets = tap_targets(cli, parse_target(target, namespace))
    session = Session(cli, targets, observe_request(keep, max_rps=0, instances=len(targets), bodies=False, max_body=0),
                      duration_s=seconds)  # fmt: skip
    try:
        for event in session.events():
            session.store.add(event)
    except KeyboardInterrupt:
        pass
    session.check_reached()
    seen = [e for e in session.store.exchanges() if e.request is not None]
    if not seen:
        raise MeshError(
            f"no request to {service} was seen while tapping {target} for {duration}",
            hint="send traffic to the service meanwhile, or tap longer with --tap-duration",
        )
    cli.stderr.write(f"profile: {len(seen)} requests to {service} observed\n")
    return profile_from_tap(seen, service, namespace)


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile_command(
        ctx: typer.Context,
        service: str = typer.Argument(..., help="The service the profile is for (its name, e.g. books)."),
        open_api: str | None = typer.Option(
            None, "--open-api", metavar="FILE", help="OpenAPI 3 / Swagger 2 spec, JSON or YAML ('-': stdin)."
        ),
        tap: str | None = typer.Option(
            None,
            "--tap",
            metavar="TARGET",
            help="Build the routes from requests to the service seen by tapping TARGET.",
        ),
        tap_duration: str = typer.Option("10s", "--tap-duration", help="With --tap: how long to watch."),
        namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace of the service."),
        output: OutputFormat | None = typer.Option(None, "-o", "--output", help="yaml (table) or json."),
    ) -> None:
        """Print a ServiceProfile with one route per operation of an OpenAPI spec, or per observed path."""
        import json

        import yaml

        from meshctl.identity import is_dns_label
        from meshctl.observe.openapi import profile_from_openapi
        from meshctl.resources import parse_text

        cli: CliContext = ctx.obj
        ns = namespace or cli.namespace or "default"
        for label, value in (("service", service), ("namespace", ns)):
            if not is_dns_label(value):
                raise UsageError(f"{label} {value!r} is not a valid name", hint="names are lowercase DNS labels")
        if (open_api is None) == (tap is None):
            raise UsageError("give --open-api FILE or --tap TARGET", hint="e.g. --tap deploy/books --tap-duration 10s")
        if tap is not None:
            document = _profile_from_tap(cli, service, ns, tap, tap_duration)
        else:
            assert open_api is not None
            source = "stdin" if open_api == "-" else open_api
            document = profile_from_openapi(_read_spec(open_api), service, ns, source)
        # Validated as `apply` validates it: what is printed is what the mesh accepts.
        (resource,) = parse_text(yaml.safe_dump(document, sort_keys=False), f"profile of {service}")
        validated = resource.to_document()
        if (output or cli.output) is OutputFormat.JSON:
            cli.stdout.write(json.dumps(validated, indent=2) + "\n")
        else:
            cli.stdout.write(yaml.safe_dump(validated, sort_keys=False, allow_unicode=True, width=120))
