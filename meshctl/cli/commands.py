"""The sub-command table. Command modules import heavy libraries lazily."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from meshctl.cli import (
        apply,
        check,
        completion,
        debug,
        delete,
        describe,
        diagnostics,
        get,
        inject,
        install,
        local,
        loglevel,
        logs,
        profile,
        routes,
        stat,
        tap,
        top,
        version,
    )

    version.register(app)

    local.register(app)  # up, down, status
    check.register(app)
    routes.register(app)
    stat.register(app)
    profile.register(app)
    apply.register(app)
    get.register(app)
    delete.register(app)
    describe.register(app)
    inject.register(app)  # inject, uninject
    install.register(app)
    tap.register(app)
    loglevel.register(app)
    debug.register(app)
    logs.register(app)
    diagnostics.register(app)
    top.register(app)
    completion.register(app)
