"""`meshctl profile`: write the ServiceProfile of a service from its OpenAPI (or Swagger) spec.

The profile is validated as `meshctl apply` would, then printed (YAML, or JSON with -o json), so
`meshctl profile books --open-api books.yaml -n booksapp | meshctl apply -f -` names every route.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import UsageError

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


PROFILE_EXAMPLES = examples(
    (
        "The routes of the books service from its OpenAPI spec",
        "meshctl profile books --open-api books.yaml -n booksapp",
    ),
    ("Straight into the mesh", "meshctl profile books --open-api books.yaml -n booksapp | meshctl apply -f -"),
)


def register(app: typer.Typer) -> None:
    @app.command("profile", epilog=PROFILE_EXAMPLES)
    def profile_command(
        ctx: typer.Context,
        service: str = typer.Argument(..., help="The service the profile is for (its name, e.g. books)."),
        open_api: str = typer.Option(
            ..., "--open-api", metavar="FILE", help="OpenAPI 3 / Swagger 2 spec, JSON or YAML ('-': stdin)."
        ),
        namespace: str | None = typer.Option(
            None, "-n", "--namespace", metavar="NAME", help="Namespace of the service."
        ),
    ) -> None:
        """Print a ServiceProfile with one route per operation of an OpenAPI spec."""
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
        source = "stdin" if open_api == "-" else open_api
        document = profile_from_openapi(_read_spec(open_api), service, ns, source)
        # Validated as `apply` validates it: what is printed is what the mesh accepts.
        (resource,) = parse_text(yaml.safe_dump(document, sort_keys=False), f"profile of {service}")
        validated = resource.to_document()
        if cli.output is OutputFormat.JSON:
            cli.stdout.write(json.dumps(validated, indent=2) + "\n")
        else:
            cli.stdout.write(yaml.safe_dump(validated, sort_keys=False, allow_unicode=True, width=120))
