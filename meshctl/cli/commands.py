"""The sub-command table. Command modules import heavy libraries lazily."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from meshctl.cli import apply, check, completion, local

    local.register(app)
    check.register(app)
    apply.register(app)
    completion.register(app)
