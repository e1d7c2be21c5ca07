"""Flags every command accepts, as kubectl does: before the sub-command or after it.

`meshctl check --context prod -o json` means what `meshctl --context prod -o json check` means. The
global flags are declared once on the root (meshctl.cli.app); `accept_global_flags` copies them onto
every sub-command that has no flag of the same name, and their callbacks write into the one CliContext.

`-o` is checked here too, for every command, against the formats it can print (`FORMATS`): an unknown
or unsupported format is refused with exit 2 and the list of what the command supports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer._click.core import Command, Context, Parameter  # typer vendors click since 0.26; pinned <0.29
from typer.core import TyperGroup, TyperOption

from meshctl.cli.context import CliContext, OutputFormat, PlatformName
from meshctl.errors import UsageError

T, W, J, Y, S = OutputFormat.TABLE, OutputFormat.WIDE, OutputFormat.JSON, OutputFormat.YAML, OutputFormat.SHORT

# What `-o` each command prints; the first is its default. A command missing here prints only its default.
FORMATS: dict[str, tuple[OutputFormat, ...]] = {
    "version": (T, J, Y),
    "up": (T, J, Y),
    "down": (T, J, Y),
    "status": (T, W, J, Y),
    "check": (T, S, J, Y),
    "check explain": (T,),
    "routes": (T, W, J, Y),
    "stat": (T, J, Y),
    "profile": (Y, J),
    "apply": (T, J, Y),
    "get": (T, W, Y, J),
    "delete": (T, J, Y),
    "describe": (T, J, Y),  # text is the table format of describe
    "completion": (T,),
    "tap": (T, W, J),  # text is the table format of tap
    "top": (T,),
    "log-level": (T, J, Y),
    "debug": (T, J),  # text is the table format of debug
    "inject": (Y, J),  # the manifests themselves
    "uninject": (Y, J),
    "install": (Y, J),
    "logs": (T, J),  # text is the table format of logs
    "diagnostics": (T,),  # the group: its help
    "diagnostics proxy-metrics": (T,),
    "diagnostics config": (T, J, Y),
}


def formats_of(path: str) -> tuple[OutputFormat, ...]:
    return FORMATS.get(path, (T,))


def _path(ctx: Context) -> str:
    """The command path without the program name: "check explain". Built from the contexts' names, since
    the program name itself may hold spaces (`python -m meshctl`)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _cli(ctx: Context) -> CliContext | None:
    # None while the shell completes a word: no command runs then, the root callback has not either.
    return ctx.find_object(CliContext)


def resolve_output(ctx: Context, value: str | None) -> None:
    """Settle `-o` for the command of ctx: its flag, else the root's, else the command's default."""
    cli = _cli(ctx)
    if cli is None:
        return
    chosen = value or cli.output_flag
    supported = formats_of(_path(ctx))
    if chosen is None:
        cli.output = supported[0]
        return
    names = [f.value for f in supported]
    if chosen not in names:
        only = "" if len(names) > 1 else " only"
        raise UsageError(
            f"`meshctl {_path(ctx)}` prints{only} {_either(names)}, not -o {chosen}",
            hint=f"use {_either([f'-o {n}' for n in names])}" if len(names) > 1 else f"drop -o {chosen}",
        )
    cli.output = OutputFormat(chosen)


def _either(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


def _setter(attribute: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Context, Parameter, Any], Any]:
    def callback(ctx: Context, param: Parameter, value: Any) -> Any:
        cli = _cli(ctx)
        if cli is not None and value is not None and value is not False:
            setattr(cli, attribute, convert(value))
        return value

    return callback


def _platform(value: str) -> PlatformName:
    try:
        return PlatformName(value)
    except ValueError:
        names = " or ".join(p.value for p in PlatformName)
        raise UsageError(f"--platform {value!r} is not a platform", hint=f"use --platform {names}") from None


def set_kubeconfig(cli: CliContext, path: str) -> None:
    """--kubeconfig wins over $KUBECONFIG, as with kubectl; the client reads the variable when it connects."""
    cli.kubeconfig = Path(path).expanduser()
    os.environ["KUBECONFIG"] = str(cli.kubeconfig)


def _output_callback(ctx: Context, param: Parameter, value: str | None) -> str | None:
    resolve_output(ctx, value)
    return value


def _complete_output(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    return [f.value for f in formats_of(_path(ctx))]


def _complete_platform(ctx: Context, args: list[str], incomplete: str) -> list[str]:
    return [p.value for p in PlatformName]


def _kubeconfig_callback(ctx: Context, param: Parameter, value: str | None) -> str | None:
    cli = _cli(ctx)
    if cli is not None and value:
        set_kubeconfig(cli, value)
    return value


def _global_options() -> list[TyperOption]:
    """Fresh copies of the global flags (a click parameter belongs to one command)."""

    from meshctl.cli.completers import namespace_names

    def option(decls: list[str], help: str, **kwargs: Any) -> TyperOption:
        return TyperOption(param_decls=decls, help=help, expose_value=False, **kwargs)

    return [
        option(["-n", "--namespace"], "Namespace of the targets.", metavar="NAME",
               callback=_setter("namespace"), autocompletion=namespace_names),
        option(["--context"], "Kubernetes context (kubernetes platform).", metavar="NAME",
               callback=_setter("kube_context")),
        option(["--kubeconfig"], "Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).", metavar="FILE",
               callback=_kubeconfig_callback),
        option(["-o", "--output"], "Output format (see the command's help).", metavar="FORMAT",
               callback=_output_callback, autocompletion=_complete_output),
        option(["--platform"], "Where the mesh runs: local or kubernetes.", metavar="NAME",
               callback=_setter("platform_name", _platform), autocompletion=_complete_platform),
        option(["--home"], "State directory of the local mesh.", metavar="DIR",
               callback=_setter("home", lambda v: Path(v).expanduser())),
        option(["--debug"], "Show tracebacks of errors.", is_flag=True, callback=_setter("debug")),
    ]  # fmt: skip


def accept_global_flags(command: Command, path: str = "") -> None:
    """Give every sub-command of `command` the global flags it does not declare itself."""
    if not isinstance(command, TyperGroup):
        return
    for name, sub in command.commands.items():
        sub_path = f"{path} {name}".strip()
        taken = {decl for param in sub.params for decl in getattr(param, "opts", [])}
        if "--kubeconfig" in taken:
            continue  # already done: the tree is built once per process, but tests build it again
        for option in _global_options():
            if "-o" in option.opts:
                option.help = f"Output format: {_either([f.value for f in formats_of(sub_path)])}."
            if not taken.intersection(option.opts):
                sub.params.append(option)
        accept_global_flags(sub, sub_path)
