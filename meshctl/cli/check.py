"""`meshctl check`: grouped health checks of the mesh; `meshctl check explain CODE` documents each one.

Everything heavy (the catalogue, cryptography, the platform) is imported inside the command, so
`meshctl --help` does not pay for it.
"""

from __future__ import annotations

import io
import re
from enum import StrEnum

import typer

from meshctl.cli.completers import check_codes
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import ExitCode, MeshError, UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_WAIT_S = 3600.0


def parse_duration(text: str) -> float:
    """Seconds of "300ms", "45s", "5m", "1m30s", "2h" or a bare number of seconds."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise UsageError(f"--wait: {text!r} is not a duration", hint="use e.g. 30s, 5m or 1m30s") from None
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not 0 <= seconds <= MAX_WAIT_S:
        raise UsageError(f"--wait: {text!r} is out of range", hint="wait between 0s and 1h")
    return seconds


class FailOn(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def checks_failed(codes: list[str], fail_on: FailOn = FailOn.ERROR) -> MeshError:
    """The run's verdict for the error boundary: exit 1, and on stderr which codes to read about."""
    shown = ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")
    verdict = "did not pass (--fail-on warning)" if fail_on is FailOn.WARNING else "failed"
    return MeshError(
        f"{len(codes)} {'check' if len(codes) == 1 else 'checks'} {verdict}: {shown}",
        hint=f"`meshctl check explain {codes[0]}` says how to fix it" if codes else None,
        exit_code=ExitCode.FAILED,
    )


CHECK_EXAMPLES = examples(
    ("Is the mesh healthy, data plane included?", "meshctl check --proxy"),
    ("One namespace's proxies, retrying failures for a minute", "meshctl check --proxy -n booksapp --wait 1m"),
    ("Can the mesh be installed here?", "meshctl check --pre"),
    ("Only the problems", "meshctl check -o short"),
    ("Every check as JSON, for a script", "meshctl check -o json"),
    ("Repair what failed on the local mesh, then check again", "meshctl check --fix --yes"),
)
EXPLAIN_EXAMPLES = examples(
    ("Every check code", "meshctl check explain"),
    ("What MC4007 verifies, why it fails and how to fix it", "meshctl check explain MC4007"),
)


def register(app: typer.Typer) -> None:
    check_app = typer.Typer(
        name="check",
        help="Check the health of the mesh, category by category (exit 1 when a check fails).",
        epilog=CHECK_EXAMPLES,
        invoke_without_command=True,
        no_args_is_help=False,
        add_completion=False,
        rich_markup_mode=None,
    )

    @check_app.callback(invoke_without_command=True)
    def check_command(
        ctx: typer.Context,
        pre: bool = typer.Option(False, "--pre", help="Check that the mesh can be installed here."),
        proxy: bool = typer.Option(False, "--proxy", help="Also check the data plane (every proxy, or -n's)."),
        namespace: str | None = typer.Option(
            None, "-n", "--namespace", metavar="NAME", help="With --proxy: only this namespace."
        ),
        all_namespaces: bool = typer.Option(
            False, "-A", "--all-namespaces", help="With --proxy: the proxies of every namespace (the default)."
        ),
        wait: str = typer.Option("0s", "--wait", metavar="DURATION", help="Retry failing checks this long (5m)."),
        fix: bool = typer.Option(False, "--fix", help="Propose remediations of failures (local platform)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="With --fix: apply them, then check again."),
        subnet: str | None = typer.Option(
            None, "--subnet", envvar="MESHCTL_SUBNET", help="With --pre: the subnet `meshctl up` would use."
        ),
        suppress: list[str] = typer.Option(
            [], "--suppress", metavar="CODE[,CODE]", help="Show these checks but never fail on them (repeatable)."
        ),
        fail_on: FailOn = typer.Option(
            FailOn.ERROR, "--fail-on", help="The least severe outcome that fails the run (exit 1): error or warning."
        ),
    ) -> None:
        """Check the health of the mesh, category by category (exit 1 when a check fails)."""
        if ctx.invoked_subcommand is not None:
            return
        from meshctl import __version__
        from meshctl.health.registry import CheckOptions, Severity
        from meshctl.health.session import CheckRequest, Session, modes_for, suppressed_codes

        cli: CliContext = ctx.obj
        if yes and not fix:
            raise UsageError("--yes applies the remediations of --fix", hint="use `meshctl check --fix --yes`")
        if fix:
            from meshctl.platform.base import Capability, require

            require(cli.platform_name.value, Capability.FIX, "meshctl check --fix")
            if pre:
                raise UsageError("--fix repairs a running local mesh", hint="drop --fix or --pre")
        fmt = cli.output
        if all_namespaces and (namespace or cli.namespace):
            raise UsageError("-A checks every namespace; -n names one", hint="drop -A or -n")
        options = CheckOptions(
            platform=cli.platform_name.value,
            home=cli.home,
            kube_context=cli.kube_context,
            namespace=None if all_namespaces else namespace or cli.namespace,
            subnet=subnet,
            modes=modes_for(pre, proxy),
            cli_version=__version__,
        )
        yaml_out = fmt is OutputFormat.YAML
        request = CheckRequest(
            options=options,
            output="json" if yaml_out else fmt.value,
            wait_s=parse_duration(wait),
            fix=fix,
            yes=yes,
            suppress=suppressed_codes(suppress, options.platform),
            fail_on=Severity(fail_on.value),
        )
        # YAML is the JSON document re-encoded: the engine renders JSON, the CLI the rest.
        buffer = io.StringIO()
        session = Session(request, lambda: cli.platform, buffer if yaml_out else cli.stdout, cli.stderr)
        failed = session.run()
        if yaml_out:
            _write_yaml(cli, buffer.getvalue())
        if failed:
            raise checks_failed(session.failed_codes, fail_on)

    @check_app.command("explain", epilog=EXPLAIN_EXAMPLES)
    def explain_command(
        ctx: typer.Context,
        code: str | None = typer.Argument(
            None, help="A check code such as MC4007; none lists every code.", autocompletion=check_codes
        ),
    ) -> None:
        """Explain a check: what it verifies, why it fails and how to fix it."""
        from meshctl.cli.style import color_enabled
        from meshctl.health.explain import explain, listing

        cli: CliContext = ctx.obj
        text = listing() if code is None else explain(code, color=color_enabled(cli.stdout))
        cli.stdout.write(text)

    app.add_typer(check_app)


def _write_yaml(cli: CliContext, json_text: str) -> None:
    """Each JSON document the engine wrote, as YAML (`---` between them when there are several)."""
    import json

    from meshctl.cli.watch import document_text

    decoder, documents, at = json.JSONDecoder(), [], 0
    while json_text[at:].strip():
        document, end = decoder.raw_decode(json_text, len(json_text) - len(json_text[at:].lstrip()))
        documents.append(document)
        at = end
    for index, document in enumerate(documents):
        cli.stdout.write(("---\n" if index else "") + document_text(document, OutputFormat.YAML))
