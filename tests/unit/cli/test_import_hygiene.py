"""`meshctl --help` must stay fast: it may not import the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("textual", "grpc", "kubernetes", "h2", "uvloop", "httptools", "cryptography", "prometheus_api_client")


def _modules_loaded_by(argv: list[str]) -> set[str]:
    probe = (
        "import sys, json\n"
        "from meshctl.cli.app import main\n"
        f"code = main({argv!r})\n"
        "sys.stdout.flush()\n"
        "sys.__stderr__.write('\\n@@' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    marker = done.stderr.rfind("@@")
    assert marker >= 0, done.stderr
    return set(json.loads(done.stderr[marker + 2 :]))


def test_help_imports_no_heavy_library() -> None:
    loaded = _modules_loaded_by(["--help"])
    offenders = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert offenders == []


def test_subcommand_help_imports_no_heavy_library() -> None:
    commands = ["up", "status", "apply", "get", "delete", "describe", "check", "routes", "stat", "profile",
                "completion", "install", "inject", "uninject"]
    for command in ([name, "--help"] for name in commands):
        loaded = _modules_loaded_by(command)
        offenders = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
        assert offenders == [], command
