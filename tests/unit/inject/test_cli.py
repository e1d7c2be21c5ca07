"""`meshctl inject` / `uninject` as users run them: files, directories, stdin, formats, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from meshctl.inject.documents import parse_documents
from tests.unit.inject.cases import GOLDEN, INPUTS, expected


def meshctl(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip


def test_a_directory_gives_every_manifest_with_a_summary_line_per_resource() -> None:
    done = meshctl("inject", str(GOLDEN / "in"))
    assert done.returncode == 0, done.stderr
    # annotation mode writes no version, so the golden files are the CLI's exact output
    assert done.stdout == "---\n".join(expected(path, "annotated")[0].read_text() for path in INPUTS)
    assert done.stderr == "".join(expected(path, "annotated")[1].read_text() for path in INPUTS)


def test_stdin_json_manual_with_debug_sidecar_and_back() -> None:
    source = (GOLDEN / "in" / "objects.json").read_text()
    injected = meshctl("inject", "-", "--manual", "--enable-debug-sidecar", "-o", "json", stdin=source)
    assert injected.returncode == 0, injected.stderr
    assert injected.stderr.splitlines() == [
        'deployment "api" injected',
        'configmap "api-settings" skipped: ConfigMap has no pod template',
    ]
    documents = parse_documents(injected.stdout, "<stdout>")  # one JSON object after the other
    names = [c["name"] for c in documents[0]["spec"]["template"]["spec"]["containers"]]
    assert names == ["meshctl-proxy", "api", "meshctl-debug"]
    again = meshctl("inject", "-", "--manual", "--enable-debug-sidecar", "-o", "json", stdin=injected.stdout)
    assert again.stdout == injected.stdout and "already injected" in again.stderr
    back = meshctl("uninject", "-", stdin=injected.stdout)
    assert back.returncode == 0 and back.stderr.startswith('deployment "api" uninjected\n')
    assert list(yaml.safe_load_all(back.stdout)) == parse_documents(source, "objects.json")


def test_a_missing_file_is_one_line_and_a_hint() -> None:
    done = meshctl("inject", "/nonexistent/books.yaml")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "Error: /nonexistent/books.yaml: no such file or directory",
        "hint: give a manifest file, a directory or - (stdin)",
    ]


def test_invalid_yaml_names_the_document_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("kind: Service\n---\nkind: Deployment\nspec: [unclosed\n")
    done = meshctl("uninject", str(manifest))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"Error: {manifest}: document 2: invalid YAML at line ") and len(lines) == 2


def test_only_yaml_and_json_are_printed() -> None:
    done = meshctl("inject", "-o", "table", "-", stdin="")
    assert done.returncode == 2 and "-o yaml or -o json" in done.stderr


def test_help_shows_examples() -> None:
    done = meshctl("inject", "--help")
    assert done.returncode == 0 and "Examples:" in done.stdout and "kubectl apply -f -" in done.stdout
