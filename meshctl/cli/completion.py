"""`meshctl completion SHELL`: the shell completion script (also kept in completions/)."""

from __future__ import annotations

from enum import StrEnum

import typer


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completion_script(shell: Shell) -> str:
    from typer._click.shell_completion import get_completion_class
    from typer._completion_classes import completion_init

    from meshctl.cli.app import app

    completion_init()  # typer's own classes, whatever was imported before: the scripts must not vary
    cls = get_completion_class(shell.value)
    if cls is None:  # pragma: no cover - click ships all three
        raise RuntimeError(f"click has no completion for {shell.value}")
    command = typer.main.get_command(app)
    return cls(command, {}, "meshctl", "_MESHCTL_COMPLETE").source()


def register(app: typer.Typer) -> None:
    @app.command("completion")
    def completion(
        ctx: typer.Context,
        shell: Shell = typer.Argument(..., help="bash, zsh or fish"),
    ) -> None:
        """Print the completion script for a shell (bash, zsh or fish)."""
        ctx.obj.stdout.write(completion_script(shell))
