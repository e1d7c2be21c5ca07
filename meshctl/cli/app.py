"""The `meshctl` entry point: global flags, sub-commands and the one error boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer._click.exceptions import ClickException  # typer vendors click since 0.26; pinned <0.29

from meshctl import __version__
from meshctl.cli.context import CliContext, OutputFormat, PlatformName, default_home
from meshctl.cli.style import Palette, Tone
from meshctl.errors import ExitCode, MeshError

app = typer.Typer(
    name="meshctl",
    help="Run, check, measure, watch and debug the mesh — locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    platform: PlatformName = typer.Option(
        PlatformName.LOCAL, "--platform", envvar="MESHCTL_PLATFORM", help="Where the mesh runs."
    ),
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace of the targets."),
    context: str | None = typer.Option(None, "--context", help="Kubernetes context (kubernetes platform)."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "-o", "--output", help="Output format."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    home: Path = typer.Option(
        None, "--home", envvar="MESHCTL_HOME", help="State directory of the local mesh [default: ~/.meshctl]."
    ),
) -> None:
    ctx.obj = CliContext(
        platform_name=platform,
        namespace=namespace,
        kube_context=context,
        output=output,
        debug=debug,
        home=home.expanduser() if home else default_home(),
    )


@app.command("version")
def _version(ctx: typer.Context) -> None:
    """Print the CLI version."""
    cli: CliContext = ctx.obj
    if cli.output is OutputFormat.JSON:
        cli.stdout.write(f'{{"client": "{__version__}"}}\n')
    else:
        cli.stdout.write(f"meshctl {__version__}\n")


def _register_commands() -> None:
    # Each command module imports its heavy dependencies inside the command body, so that
    # `meshctl --help` stays fast.
    from meshctl.cli import commands

    commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure leaves here as one message, a hint and an exit code."""
    _register_commands()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = app(args=args, prog_name="meshctl", standalone_mode=False)
    except MeshError as exc:
        if debug:
            raise
        _report(exc.message, exc.hint)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        return int(ExitCode.INTERRUPTED)
    except ClickException as exc:
        exc.show(file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    # Without standalone mode, typer returns the exit code of `typer.Exit` and of Ctrl-C instead of raising.
    return code if isinstance(code, int) else int(ExitCode.OK)


def _report(message: str, hint: str | None) -> None:
    paint = Palette.for_stream(sys.stderr)
    sys.stderr.write(f"{paint(Tone.BAD, 'Error:')} {message}\n")
    if hint:
        sys.stderr.write(f"{paint(Tone.DIM, 'hint:')} {hint}\n")


def run() -> None:
    sys.exit(main())
