"""Global flags before or after the sub-command, -o settled per command, Examples in every help."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer._click.core import Command, Context

from meshctl.cli.app import build_command
from meshctl.cli.context import CliContext
from meshctl.cli.flags import FORMATS, resolve_output
from meshctl.errors import UsageError


def _meshctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, **(env or {})})  # fmt: skip


def _commands(command: Command, path: str = "") -> dict[str, Command]:
    found: dict[str, Command] = {}
    for name, sub in getattr(command, "commands", {}).items():
        sub_path = f"{path} {name}".strip()
        found[sub_path] = sub
        found.update(_commands(sub, sub_path))
    return found


def test_every_command_declares_its_formats_and_takes_every_global_flag() -> None:
    commands = _commands(build_command())
    assert set(commands) == set(FORMATS)
    for path, command in commands.items():
        flags = {opt for param in command.params for opt in getattr(param, "opts", [])}
        missing = {"-n", "--context", "--kubeconfig", "-o", "--platform", "--home", "--debug"} - flags
        assert not missing, f"{path} lacks {missing}"


@pytest.mark.parametrize("path", sorted(FORMATS))
def test_every_help_ends_with_examples(path: str) -> None:
    done = _meshctl(*path.split(), "--help")
    assert done.returncode == 0, done.stderr
    examples = done.stdout.split("Examples:", 1)[1]
    assert "  # " in examples and f"meshctl {path.split()[0]}" in examples


def test_flags_after_the_sub_command(tmp_path: Path) -> None:
    after = _meshctl("version", "--client", "-o", "json", "--home", str(tmp_path), "--context", "x", "-n", "y")
    assert after.returncode == 0 and after.stdout == '{\n  "client": "0.1.0"\n}\n', after.stderr
    before = _meshctl("-o", "yaml", "version", "--client")
    assert before.returncode == 0 and before.stdout == "client: 0.1.0\n"


def test_kubeconfig_after_the_sub_command_reaches_the_kubernetes_client(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    done = _meshctl("status", "--platform", "kubernetes", "--kubeconfig", str(missing),
                    env={"KUBECONFIG": "/elsewhere"})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"Error: no kubeconfig for the kubernetes platform: {missing} does not exist")


@pytest.mark.parametrize(("args", "supported"), [
    (["status", "-o", "short"], "table, wide, json or yaml"),
    (["stat", "deploy", "-o", "wide"], "table, json or yaml"),
    (["-o", "short", "routes", "deploy/webapp"], "table, wide, json or yaml"),
    (["profile", "books", "--open-api", "x.yaml", "-o", "table"], "yaml or json"),
    (["completion", "bash", "-o", "json"], "only table"),
    (["up", "-o", "bogus"], "table, json or yaml"),
])  # fmt: skip
def test_an_output_a_command_does_not_print_is_refused(args: list[str], supported: str) -> None:
    done = _meshctl(*args)
    assert done.returncode == 2 and done.stdout == ""
    first, hint = done.stderr.splitlines()
    assert first.startswith("Error: `meshctl ") and f"prints {supported}, not -o " in first
    assert hint.startswith("hint: ")


def test_a_command_without_o_gets_its_own_default() -> None:
    root = build_command()
    cli = CliContext(stdout=io.StringIO())
    parent = Context(root, info_name="meshctl", obj=cli)
    profile = Context(_commands(root)["profile"], info_name="profile", parent=parent)
    resolve_output(profile, None)
    assert cli.output == "yaml"
    cli.output_flag = "json"  # -o json before the sub-command
    resolve_output(profile, None)
    assert cli.output == "json"
    with pytest.raises(UsageError, match="prints yaml or json, not -o wide"):
        resolve_output(profile, "wide")
