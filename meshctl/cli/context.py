"""What every command receives: the global flags and the streams to write to."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from meshctl.platform.base import Platform, PlatformSpec


class OutputFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    SHORT = "short"


class PlatformName(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


def default_home() -> Path:
    return Path(os.environ.get("MESHCTL_HOME") or Path.home() / ".meshctl").expanduser()


@dataclass
class CliContext:
    """Global flags plus injectable streams (tests pass their own)."""

    platform_name: PlatformName = PlatformName.LOCAL
    namespace: str | None = None
    kube_context: str | None = None
    output: OutputFormat = OutputFormat.TABLE  # settled per command by meshctl.cli.flags.resolve_output
    output_flag: str | None = None  # -o as given before the sub-command, if it was
    kubeconfig: Path | None = None
    debug: bool = False
    home: Path = field(default_factory=default_home)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @cached_property
    def out(self) -> Console:
        return _console(self.stdout)

    @cached_property
    def err(self) -> Console:
        return _console(self.stderr)

    def platform_spec(self) -> PlatformSpec:
        """The platform the global flags name, in the platform's own terms."""
        from meshctl.platform.base import PlatformSpec

        return PlatformSpec(
            name=self.platform_name.value, home=self.home, namespace=self.namespace, context=self.kube_context
        )

    @cached_property
    def platform(self) -> Platform:
        from meshctl.platform.base import open_platform

        return open_platform(self.platform_spec())


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    from meshctl.cli import style

    # One decision for rich and for our own renderers: meshctl.cli.style's.
    color = style.color_enabled(stream)
    tty = style.can_redraw(stream)
    return Console(
        file=stream,
        force_terminal=tty or color,
        no_color=not color,
        color_system="standard" if color else None,
        width=style.width(stream),
        highlight=False,
        soft_wrap=not tty,
    )
