"""The sub-command table. Command modules import heavy libraries lazily."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from meshctl.cli import apply, completion, local

    local.register(app)
    apply.register(app)
    completion.register(app)
