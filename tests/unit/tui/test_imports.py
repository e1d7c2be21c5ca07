"""The TUI reads data only through meshctl.tapping, and its model and export need no Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import meshctl.tui

ALLOWED = ("meshctl.tapping", "meshctl.tui", "meshctl.errors")
TUI = Path(meshctl.tui.__file__).parent


def test_the_tui_imports_only_tapping_from_meshctl() -> None:
    found: dict[str, list[str]] = {}
    for path in TUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("meshctl") and not name.startswith(ALLOWED) or name.startswith("grpc"):
                    found.setdefault(str(path.relative_to(TUI)), []).append(name)
    assert found == {}


def test_model_and_export_load_without_textual() -> None:
    code = "import sys, meshctl.tui.model, meshctl.tui.export; print('textual' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
