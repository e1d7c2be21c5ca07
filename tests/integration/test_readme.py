"""The README's first ten minutes, literally: its "Start the demo mesh" and "Then:" blocks, step by step;
and, on the same mesh before the README's `meshctl down`, the conventions every command keeps.

The commands are read from README.md, so the README cannot drift from what works. Each runs in bash the
way a newcomer types it (`.venv/bin` first on PATH, as `. .venv/bin/activate` does), on a fresh state
directory and a free loopback subnet; the README's demo addresses (127.77.x.y) are moved to that subnet.
Every step must exit 0 and print something a person can read: no traceback, no escape codes in a pipe.

Conventions (tests/integration/conventions.py): every command with -o json and -o yaml and the global
flags after the sub-command, NO_COLOR=1 on a pseudo-terminal, and an unsupported -o refused with exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import conventions
from tests.integration.local_mesh import UP_TIMEOUT_S, free_subnet, meshctl, subnet_host

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SUBNET = free_subnet()
README_SUBNET = "127.77."


def _blocks(text: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def readme_steps() -> tuple[str, list[str]]:
    """The command that starts the mesh, and the commands the README runs after it, comments removed."""
    blocks = _blocks(README.read_text(encoding="utf-8"))
    start = next(b for b in blocks if b and b[0].startswith("bash .ci/up"))
    then = next(b for b in blocks if any(line.startswith("meshctl ") for line in b))
    steps = [re.sub(r"\s+#.*$", "", line).strip() for line in then]
    return start[0], [s for s in steps if s and not s.startswith((". ", "source "))]


@dataclass
class Shell:
    home: Path
    env: dict[str, str]

    def run(self, command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        prefix = ".".join(SUBNET.split(".")[:2]) + "."
        return subprocess.run(["bash", "-c", command.replace(README_SUBNET, prefix)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    home = tmp_path_factory.mktemp("readme") / "meshctl-home"  # fresh: `up` creates it
    env = {**os.environ, "MESHCTL_HOME": str(home), "MESHCTL_SUBNET": SUBNET, "NO_COLOR": ""}
    for name in ("MESHCTL_PROMETHEUS_URL", "MESHCTL_PLATFORM", "FORCE_COLOR"):
        env.pop(name, None)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    try:
        yield Shell(home, env)
    finally:
        meshctl(home, "down", timeout=120)


def _readable(done: subprocess.CompletedProcess[str]) -> None:
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text
    assert "\x1b[" not in text, "escape codes in a pipe"
    assert done.stdout.strip(), f"no output on stdout; stderr: {done.stderr}"


START, STEPS = readme_steps()


def test_the_readme_starts_the_demo_mesh(shell: Shell) -> None:
    assert START == "bash .ci/up"
    done = shell.run(START, timeout=UP_TIMEOUT_S + 120)
    assert done.returncode == 0, done.stderr
    _readable(done)
    assert "The mesh is up" in done.stdout and "ingress" in done.stdout
    assert "setuptools" not in done.stderr and "WARNING" not in done.stderr  # set-up says only what it does


@pytest.mark.parametrize("step", [s for s in STEPS if s != "meshctl down"])
def test_readme_step(shell: Shell, step: str) -> None:
    done = shell.run(step)
    assert done.returncode == 0, f"{step}\n{done.stdout}\n{done.stderr}"
    _readable(done)
    if step.startswith("curl"):
        assert "<" in done.stdout  # the demo's HTML page, through the ingress


def test_every_command_prints_json_and_yaml_with_flags_after_it(shell: Shell, tmp_path: Path) -> None:
    conventions.documents_with_flags_after(shell.env, shell.home, tmp_path)


def test_no_color_on_a_terminal_means_no_escape_codes(shell: Shell, tmp_path: Path) -> None:
    conventions.no_escape_codes_on_a_terminal(shell.env, shell.home, tmp_path)


def test_an_unsupported_output_is_refused(shell: Shell, tmp_path: Path) -> None:
    conventions.unsupported_output_refused(shell.env, shell.home, tmp_path)


def test_completion_lists_the_running_meshs_deployments(shell: Shell) -> None:
    script = (
        "source completions/meshctl.bash; COMP_WORDS=(meshctl routes -n booksapp deploy/); COMP_CWORD=4; "
        "_meshctl_completion meshctl; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = shell.run(script)
    assert done.returncode == 0, done.stderr
    assert {"deploy/webapp", "deploy/books", "deploy/authors"} <= set(done.stdout.split())


def test_readme_down(shell: Shell) -> None:
    assert "meshctl down" in STEPS
    done = shell.run("meshctl down")
    assert done.returncode == 0, done.stderr
    _readable(done)
    assert "Stopped the mesh" in done.stdout


def test_the_readme_runs_every_command_it_shows() -> None:
    commands = {step.split()[1] for step in STEPS if step.startswith("meshctl ")}
    assert {"status", "check", "routes", "stat", "down"} <= commands
    assert any(step.startswith("curl") and subnet_host("127.77.0.0/16", "0.4") in step for step in STEPS)
