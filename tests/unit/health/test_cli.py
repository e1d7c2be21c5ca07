"""`meshctl check` and `meshctl check explain` through typer, with injected streams and no mesh."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import yaml

from meshctl.cli import check
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.flags import accept_global_flags
from meshctl.errors import MeshError, UsageError


@dataclass
class Done:
    code: int
    stdout: str
    error: MeshError | None


def invoke(home: Path, *args: str, output: OutputFormat = OutputFormat.TABLE) -> Done:
    stdout = io.StringIO()
    app = typer.Typer(add_completion=False)

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliContext(home=home, output_flag=output.value, stdout=stdout, stderr=io.StringIO())

    check.register(app)
    command = typer.main.get_command(app)
    accept_global_flags(command)  # -o and the other global flags, as meshctl's own entry point adds them
    try:
        command.main(args=list(args), prog_name="meshctl", standalone_mode=False)
    except MeshError as exc:
        return Done(int(exc.exit_code), stdout.getvalue(), exc)
    return Done(0, stdout.getvalue(), None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("45s", 45.0), ("5m", 300.0), ("1m30s", 90.0), ("300ms", 0.3), ("1h", 3600.0), ("12", 12.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert check.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "5x", "1m 30s", "-3", "3h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--wait"):
        check.parse_duration(text)


def test_no_mesh_fails_mc1001_with_exit_1(tmp_path: Path) -> None:
    done = invoke(tmp_path / "absent", "check")
    assert done.code == 1
    assert "× the state directory exists and is readable" in done.stdout
    assert "see meshctl check explain MC1001" in done.stdout
    assert done.stdout.rstrip().endswith("Status check results are ×")
    assert done.error is not None and "MC1001" in done.error.message


def test_empty_home_fails_mc1002(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check")
    assert done.code == 1
    assert "√ the state directory exists and is readable" in done.stdout
    assert "× a mesh is recorded in the state directory" in done.stdout
    assert f"no mesh is running in {tmp_path}" in done.stdout


def test_global_json_output_is_one_document(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", output=OutputFormat.JSON)
    document = json.loads(done.stdout)
    assert document["success"] is False and document["platform"] == "local"
    codes = [c["code"] for category in document["categories"] for c in category["checks"]]
    assert codes[0] == "MC1001" and "MC8001" not in codes


def test_yaml_output_is_the_json_document(tmp_path: Path) -> None:
    as_json = json.loads(invoke(tmp_path, "check", "-o", "json").stdout)
    done = invoke(tmp_path, "check", "-o", "yaml")
    assert done.code == 1
    document = yaml.safe_load(done.stdout)
    for timing in ("duration_s",):  # the two runs took their own time
        as_json.pop(timing), document.pop(timing)
    assert [c["id"] for c in document["categories"]] == [c["id"] for c in as_json["categories"]]
    assert document["counts"] == as_json["counts"] and document["success"] is False


def test_local_output_flag_and_proxy_mode(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", "--proxy", "-n", "booksapp", "-o", "short")
    assert done.code == 1
    assert "√" not in done.stdout and "× a mesh is recorded in the state directory" in done.stdout
    json_done = invoke(tmp_path, "check", "--proxy", "-o", "json")
    ids = [c["id"] for c in json.loads(json_done.stdout)["categories"]]
    assert ids[-1] == "data-plane" and "pre-install" not in ids


def test_pre_runs_only_pre_install_categories(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", "--pre", "--subnet", "127.111.0.0/16", "-o", "json")
    ids = [c["id"] for c in json.loads(done.stdout)["categories"]]
    assert ids == ["local-version", "pre-install"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pre", "--proxy"), "cannot be used together"),
        (("--yes",), "--fix"),
        (("--pre", "--fix"), "running local mesh"),
        (("--wait", "forever"), "not a duration"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = invoke(tmp_path, "check", *args)
    assert done.code == 2 and done.error is not None and message in done.error.message


def test_fix_without_a_mesh_proposes_nothing(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", "--fix")
    assert done.code == 1
    assert "--fix cannot repair MC1002" in done.stdout


def test_explain_a_code_and_list_them(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", "explain", "MC4009")
    assert done.code == 0 and done.stdout.startswith("# MC4009: the issuer is signed by the trust anchor")
    listing = invoke(tmp_path, "check", "explain")
    assert listing.stdout.splitlines()[0].startswith("MC1001  local-platform")
    bad = invoke(tmp_path, "check", "explain", "MC9999")
    assert bad.code == 2


def test_check_help_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, json, typer\n"
        "from meshctl.cli import check\n"
        "app = typer.Typer()\n"
        "app.callback()(lambda: None)\n"
        "check.register(app)\n"
        "try:\n"
        "    app(args=['check', '--help'], prog_name='meshctl', standalone_mode=False)\n"
        "finally:\n"
        "    sys.__stderr__.write('\\n@@' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    loaded = set(json.loads(done.stderr[done.stderr.rfind("@@") + 2 :]))
    heavy = ("textual", "grpc", "kubernetes", "h2", "uvloop", "httptools", "cryptography", "yaml")
    assert "--pre" in done.stdout
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    assert not any(m.startswith("meshctl.health") for m in loaded)


def test_suppressed_failures_are_shown_but_do_not_fail_the_run(tmp_path: Path) -> None:
    done = invoke(tmp_path, "check", "--suppress", "mc1002")
    assert done.code == 0, done.stdout
    assert f"~ a mesh is recorded in the state directory (suppressed MC1002: no mesh is running in {tmp_path})" in (
        done.stdout
    )
    # What needs the suppressed check is still skipped, and listed by name with the reason.
    assert "- `meshctl up` has finished starting the mesh (skipped: requires MC1002, which did not pass)" in done.stdout
    assert "- the control plane is running (skipped: requires local-platform, which did not pass)" in done.stdout
    document = json.loads(invoke(tmp_path, "check", "--suppress", "MC1001,MC1002", "-o", "json").stdout)
    mc1002 = document["categories"][0]["checks"][1]
    assert (mc1002["code"], mc1002["outcome"], mc1002["suppressed"]) == ("MC1002", "failed", True)
    assert document["success"] is True and document["counts"]["suppressed"] == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("MC8999", "no check of the local platform has the code MC8999"),
        ("MC1100", "no check of the local platform has the code MC1100"),  # a Kubernetes-only check
        ("MC1002,oops", "'OOPS' is not a check code"),
    ],
)
def test_suppress_refuses_codes_no_check_has(tmp_path: Path, value: str, message: str) -> None:
    done = invoke(tmp_path, "check", "--suppress", value)
    assert done.code == 2 and done.error is not None and message in done.error.message and done.error.hint


def test_fail_on_warning_makes_a_warning_exit_1(tmp_path: Path) -> None:
    (tmp_path / "mesh.json").write_text("{not json")  # --pre warns that `meshctl up` will replace it
    args = ("check", "--pre", "--subnet", "127.111.0.0/16", "--suppress", "MC1023")  # Prometheus need not exist
    warned = invoke(tmp_path, *args)
    assert warned.code == 0 and "‼ no mesh is running in the state directory" in warned.stdout
    strict = invoke(tmp_path, *args, "--fail-on", "warning")
    assert strict.code == 1 and strict.stdout.rstrip().endswith("Status check results are ×")
    assert strict.error is not None and strict.error.message == "1 check did not pass (--fail-on warning): MC1021"
    short = invoke(tmp_path, *args, "--fail-on", "warning", "-o", "short")
    assert "‼ no mesh is running in the state directory" in short.stdout
