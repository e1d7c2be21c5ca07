"""Tab in the real shells, against the scripts shipped in completions/: commands, flags, targets,
namespaces and check codes. The mesh's deployments come from the local state directory's record."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshctl.platform.local.state import ComponentRecord, Layout, MeshRecord, write_record

ROOT = Path(__file__).resolve().parents[3]
COMPLETIONS = ROOT / "completions"
ZSH_TAB = Path(__file__).with_name("shells") / "zsh_tab.zsh"
WORKLOADS = {"webapp": "webapp", "books": "books", "authors": "authors"}


def _record(home: Path) -> None:
    """The record `meshctl up` leaves in its state directory, reduced to what completion reads."""
    components = [
        ComponentRecord(name=f"{d}-0", kind="workload", namespace="booksapp", deployment=d, pod=f"{d}-0",
                        addresses={}, service=svc)
        for d, svc in WORKLOADS.items()
    ] + [ComponentRecord(name="control-0", kind="control-plane", namespace="meshctl", deployment="control",
                         pod="control-0", addresses={})]  # fmt: skip
    layout = Layout(home)
    layout.create()
    write_record(layout, MeshRecord(started_at="", up_pid=0, home=str(home), subnet="", demo=True,
                                    state="running", components=components))  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    _record(home)
    bin_dir = str(Path(sys.executable).parent)  # the meshctl the scripts call is this checkout's
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "MESHCTL_HOME": str(home),
        "MESHCTL_COMPLETIONS": str(COMPLETIONS),
        "HOME": str(tmp_path),
    }


def bash(env: dict[str, str], *words: str) -> list[str]:
    """COMPREPLY for the words typed so far (the last one is being completed)."""
    script = (
        f"source {COMPLETIONS / 'meshctl.bash'}\n"
        "COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n"
        "$(complete -p meshctl | sed -E 's/.*-F ([^ ]+).*/\\1/') meshctl\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(["bash", "--norc", "-c", script, "bash", "meshctl", *words], env=env,
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def fish(env: dict[str, str], line: str) -> list[str]:
    script = f"source {COMPLETIONS / 'meshctl.fish'}; complete -C {line!r}"
    done = subprocess.run(["fish", "--no-config", "-c", script], env=env, capture_output=True, text=True,
                          timeout=30, check=True)  # fmt: skip
    return [row.split("\t")[0] for row in done.stdout.splitlines()]


def zsh(env: dict[str, str], line: str, pattern: str) -> str:
    done = subprocess.run(["zsh", "-f", str(ZSH_TAB), line, pattern], env=env, capture_output=True, text=True,
                          timeout=40, check=True)  # fmt: skip
    return done.stdout


def test_bash_commands_flags_and_output_formats(env: dict[str, str]) -> None:
    assert bash(env, "st") == ["status", "stat"]
    flags = bash(env, "check", "--")
    assert {"--proxy", "--pre", "--context", "--kubeconfig", "--output", "--all-namespaces"} <= set(flags)
    assert bash(env, "stat", "deploy", "-o", "") == ["table", "json", "yaml"]


def test_bash_targets_namespaces_and_check_codes(env: dict[str, str]) -> None:
    assert bash(env, "routes", "deploy/") == ["deploy/authors", "deploy/books", "deploy/webapp"]
    assert bash(env, "routes", "deploy/we") == ["deploy/webapp"]
    assert bash(env, "stat", "d") == ["deploy/"]
    assert bash(env, "routes", "deploy/webapp", "--to", "svc/b") == ["svc/books"]
    assert bash(env, "stat", "deploy", "-n", "") == ["booksapp", "meshctl"]
    assert bash(env, "-n", "book") == ["booksapp"]
    codes = bash(env, "check", "explain", "MC40")
    assert "MC4007" in codes and all(code.startswith("MC40") for code in codes)


def test_bash_resource_kinds_names_and_describe_targets(env: dict[str, str]) -> None:
    config = Path(env["MESHCTL_HOME"]) / "config"
    config.mkdir(exist_ok=True)
    (config / "faultinjection-booksapp-books-faults.yaml").write_text(
        "apiVersion: meshctl.io/v1alpha1\nkind: FaultInjection\nmetadata: {name: books-faults, namespace: booksapp}\n"
        "spec: {service: books, abort: {percent: 10}}\n"
    )
    assert bash(env, "get", "tr") == ["trafficsplits", "traffictargets"]
    assert bash(env, "get", "fi", "b") == ["books-faults"]
    assert bash(env, "delete", "faultinjections", "") == ["books-faults"]
    assert bash(env, "describe", "deploy/b") == ["deploy/books"]


def test_bash_inject_flags_and_formats(env: dict[str, str]) -> None:
    # file names are the shell's own (`complete -o default`) when meshctl offers nothing
    for command in ("inject", "uninject"):
        assert bash(env, command, "books.yaml", "-o", "") == ["yaml", "json"]
    assert {"--manual", "--enable-debug-sidecar"} <= set(bash(env, "inject", "--"))


def test_bash_logs_diagnostics_and_version(env: dict[str, str]) -> None:
    assert bash(env, "lo") == ["log-level", "logs"]
    assert bash(env, "logs", "deploy/we") == ["deploy/webapp"]
    assert {"--proxy", "--app", "--control", "--follow", "--since", "--tail"} <= set(bash(env, "logs", "--"))
    assert bash(env, "diagnostics", "") == ["proxy-metrics", "config"]
    assert bash(env, "diagnostics", "config", "deploy/bo") == ["deploy/books"]
    assert bash(env, "diagnostics", "config", "x", "-o", "") == ["table", "json", "yaml"]
    assert "--client" in bash(env, "version", "--")


def test_bash_offers_nothing_without_a_mesh(env: dict[str, str], tmp_path: Path) -> None:
    empty = {**env, "MESHCTL_HOME": str(tmp_path / "none")}
    assert bash(empty, "routes", "deploy/") == []


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (.ci/setup installs it)")
def test_fish(env: dict[str, str]) -> None:
    assert {"stat", "status"} <= set(fish(env, "meshctl st"))
    assert fish(env, "meshctl routes deploy/") == ["deploy/authors", "deploy/books", "deploy/webapp"]
    assert "--kubeconfig" in fish(env, "meshctl stat deploy --")
    assert fish(env, "meshctl check explain MC4007") == ["MC4007"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (.ci/setup installs it)")
def test_zsh(env: dict[str, str]) -> None:
    assert "meshctl version " in zsh(env, "meshctl versi", "meshctl version ")
    assert "deploy/webapp" in zsh(env, "meshctl routes deploy/we", "deploy/webapp")
    listed = zsh(env, "meshctl routes deploy/", "deploy/webapp")
    assert "authors" in listed and "books" in listed
