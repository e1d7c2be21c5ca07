"""The `meshctl` entry point: global flags, sub-commands and the one error boundary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from typer._click import Command
from typer._click.exceptions import ClickException  # typer vendors click since 0.26; pinned <0.29

from meshctl.cli.completers import namespace_names
from meshctl.cli.context import CliContext, PlatformName, default_home
from meshctl.cli.examples import examples
from meshctl.cli.flags import accept_global_flags, set_kubeconfig
from meshctl.cli.style import Palette, Tone
from meshctl.errors import ExitCode, MeshError

COMPLETE_VAR = "_MESHCTL_COMPLETE"  # set by the scripts in completions/ when the shell asks for words
ROOT_EXAMPLES = examples(
    ("Start the demo mesh, then see every component", "meshctl up && meshctl status"),
    ("Global flags go before or after the sub-command, as with kubectl", "meshctl check --context prod -o json"),
    ("Tab completion for this bash", "source <(meshctl completion bash)"),
)

app = typer.Typer(
    name="meshctl",
    help="Run, check, measure, watch and debug the mesh — locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=ROOT_EXAMPLES,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    platform: PlatformName = typer.Option(
        PlatformName.LOCAL, "--platform", envvar="MESHCTL_PLATFORM", help="Where the mesh runs."
    ),
    namespace: str | None = typer.Option(
        None, "-n", "--namespace", metavar="NAME", help="Namespace of the targets.", autocompletion=namespace_names
    ),
    context: str | None = typer.Option(None, "--context", metavar="NAME", help="Kubernetes context."),
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig", metavar="FILE", help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)."
    ),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="FORMAT", help="table, wide, short, json or yaml: each command says which."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    home: Path = typer.Option(
        None, "--home", envvar="MESHCTL_HOME", help="State directory of the local mesh [default: ~/.meshctl]."
    ),
) -> None:
    ctx.obj = CliContext(
        platform_name=platform,
        namespace=namespace,
        kube_context=context,
        output_flag=output,
        debug=debug,
        home=home.expanduser() if home else default_home(),
    )
    if kubeconfig:
        set_kubeconfig(ctx.obj, kubeconfig)


_registered = False


def build_command() -> Command:
    """The click command tree: every sub-command registered, the global flags accepted after each."""
    global _registered
    if not _registered:
        # Each command module imports its heavy dependencies inside the command body, so that
        # `meshctl --help` stays fast.
        from meshctl.cli import commands

        commands.register(app)
        _registered = True
    command = typer.main.get_command(app)
    accept_global_flags(command)
    return command


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure leaves here as one message, a hint and an exit code."""
    command = build_command()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if COMPLETE_VAR in os.environ:
        from typer._completion_classes import completion_init

        completion_init()  # typer's bash/zsh/fish classes answer the scripts in completions/
    try:
        code = command.main(args=args, prog_name="meshctl", complete_var=COMPLETE_VAR, standalone_mode=False)
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
