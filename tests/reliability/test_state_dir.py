"""A state directory that cannot be used is one line and a hint, never a traceback.

The CLI as a user runs it (a subprocess), for a MESHCTL_HOME that is a file, under a file, a dangling
symlink, another user's directory, and (run as an unprivileged user) a directory it may not write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from meshctl.errors import ExitCode
from tests.integration.local_mesh import meshctl

pytestmark = pytest.mark.integration

NOBODY = 65534


def a_file(tmp: Path) -> Path:
    (tmp / "home").write_text("not a directory\n")
    return tmp / "home"


def under_a_file(tmp: Path) -> Path:
    return a_file(tmp) / "meshctl"


def dangling_symlink(tmp: Path) -> Path:
    (tmp / "home").symlink_to(tmp / "gone")
    return tmp / "home"


def another_users(tmp: Path) -> Path:
    (tmp / "home").mkdir()
    os.chown(tmp / "home", NOBODY, NOBODY)
    return tmp / "home"


CASES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "file": (a_file, "it is a file, not a directory", "remove or rename the file"),
    "under a file": (under_a_file, "home is a file, not a directory", "point MESHCTL_HOME"),
    "dangling symlink": (dangling_symlink, "which does not exist", "create the target directory"),
    "another user's": (another_users, f"belongs to another user (uid {NOBODY})", "a directory of your own"),
}


def assert_one_line_error(done: subprocess.CompletedProcess[str], problem: str, hint: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == ExitCode.USAGE, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot be used" in errors[0] and problem in errors[0], done.stderr
    assert any(line.startswith("hint:") and hint in line for line in done.stderr.splitlines()), done.stderr


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [["up", "--subnet", "127.254.0.0/16"], ["status"], ["down"]])
def test_bad_state_directory_is_one_line_with_a_hint(tmp_path: Path, case: str, command: list[str]) -> None:
    if case == "another user's" and os.geteuid() != 0:
        pytest.skip("needs root to hand a directory to another user")
    make, problem, hint = CASES[case]
    home = make(tmp_path)
    done = meshctl(home, *command, timeout=120)
    try:
        assert_one_line_error(done, problem, hint)
    finally:
        if command[0] == "up" and done.returncode == 0:  # it should have refused: stop what it started
            meshctl(home, "down", timeout=60)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_unwritable_state_directory_is_one_line_with_a_hint() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # under /tmp: the unprivileged user may enter it
        check_unwritable(Path(tmp))


def check_unwritable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    os.chown(home, NOBODY, NOBODY)  # the user's own directory, but read-only to them
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    done = subprocess.run(
        [*as_nobody, sys.executable, "-m", "meshctl", "up", "--subnet", "127.254.0.0/16"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "MESHCTL_HOME": str(home), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert_one_line_error(done, "permission denied", f"chmod u+rwx {home}")
