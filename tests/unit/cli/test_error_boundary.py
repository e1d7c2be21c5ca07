"""The CLI's one error boundary: message and hint on stderr, exit code from the error."""

from __future__ import annotations

import subprocess
import sys


def _meshctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_unknown_platform_is_a_usage_error() -> None:
    done = _meshctl("--platform", "mars", "status")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "mars" in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    done = _meshctl("frobnicate")
    assert done.returncode == 2
    assert "frobnicate" in done.stderr


def test_kubernetes_platform_says_it_is_not_available() -> None:
    done = _meshctl("--platform", "kubernetes", "status")
    assert done.returncode != 0
    assert done.stderr.startswith("Error: ")
    assert "kubernetes" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_json_is_json() -> None:
    import json

    from meshctl import __version__

    done = _meshctl("-o", "json", "version")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"client": __version__}
