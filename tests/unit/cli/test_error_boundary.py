"""The CLI's one error boundary: message and hint on stderr, exit code from the error."""

from __future__ import annotations

import os
import subprocess
import sys


def _meshctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
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


def test_kubernetes_without_a_kubeconfig_names_the_fix() -> None:
    done = _meshctl("--platform", "kubernetes", "status", env={"KUBECONFIG": "/nonexistent/kubeconfig"})
    assert done.returncode == 2
    assert done.stderr.startswith("Error: no kubeconfig for the kubernetes platform")
    assert "hint: set KUBECONFIG" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_json_is_json() -> None:
    import json

    from meshctl import __version__

    done = _meshctl("-o", "json", "version", "--client")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"client": __version__}
