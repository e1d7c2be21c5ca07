"""`meshctl completion SHELL`: the shell completion script (also kept in completions/)."""

from __future__ import annotations

from enum import StrEnum

import typer

from meshctl.cli.examples import examples


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completion_script(shell: Shell) -> str:
    from typer._click.shell_completion import get_completion_class
    from typer._completion_classes import completion_init

    from meshctl.cli.app import COMPLETE_VAR, build_command

    completion_init()  # typer's own classes, whatever was imported before: the scripts must not vary
    cls = get_completion_class(shell.value)
    if cls is None:  # pragma: no cover - click ships all three
        raise RuntimeError(f"click has no completion for {shell.value}")
    return cls(build_command(), {}, "meshctl", COMPLETE_VAR).source()


COMPLETION_EXAMPLES = examples(
    ("bash, for this shell", "source <(meshctl completion bash)"),
    ("bash, for every new shell", "meshctl completion bash > ~/.local/share/bash-completion/completions/meshctl"),
    ("zsh (a directory on $fpath)", "meshctl completion zsh > ~/.zfunc/_meshctl"),
    ("fish", "meshctl completion fish > ~/.config/fish/completions/meshctl.fish"),
)


def register(app: typer.Typer) -> None:
    @app.command("completion", epilog=COMPLETION_EXAMPLES)
    def completion(
        ctx: typer.Context,
        shell: Shell = typer.Argument(..., help="bash, zsh or fish"),
    ) -> None:
        """Print the completion script for a shell (bash, zsh or fish)."""
        ctx.obj.stdout.write(completion_script(shell))
