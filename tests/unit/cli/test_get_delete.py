"""`meshctl get` and `meshctl delete` against a local resource directory: kubectl's names and lines, a
`-o yaml` list that applies back unchanged, deletions that validate everything first and rewrite only
the files that held what was deleted."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from meshctl.cli import apply, delete, get
from meshctl.cli.context import CliContext, PlatformName
from meshctl.cli.flags import accept_global_flags
from meshctl.errors import ExitCode, MeshError, UsageError
from meshctl.resources import ResourceError, parse_text
from meshctl.resources.names import kind_names, resolve_kind

FAULT = """\
apiVersion: meshctl.io/v1alpha1
kind: FaultInjection
metadata: {name: books-faults, namespace: booksapp}
spec: {service: books, routes: ["GET /books"], abort: {percent: 10}}
"""
SPLIT = """\
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: books-canary, namespace: booksapp}
spec: {service: books, backends: [{service: books, weight: 90}, {service: books-v2, weight: 10}]}
"""
OTHER_NS_FAULT = FAULT.replace("namespace: booksapp", "namespace: shop").replace("books-faults", "shop-faults")


def run(home: Path, *args: str, stdin: str = "", platform: PlatformName = PlatformName.LOCAL,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[str, str]:  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliContext(home=home, stdout=out, stderr=err, platform_name=platform)

    for module in (apply, get, delete):
        module.register(app)
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    command = typer.main.get_command(app)
    accept_global_flags(command)
    command.main(args=list(args), standalone_mode=False)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    files = tmp_path / "in"
    files.mkdir()
    (files / "a.yaml").write_text(FAULT + "---\n" + SPLIT)
    (files / "b.yaml").write_text(OTHER_NS_FAULT)
    run(tmp_path / "home", "apply", "-f", str(files))
    return tmp_path / "home"


@pytest.mark.parametrize("name", ["fi", "faultinjection", "faultinjections", "FaultInjection",
                                  "faultinjections.meshctl.io"])  # fmt: skip
def test_kind_names_as_kubectl_takes_them(name: str) -> None:
    assert resolve_kind(name).kind == "FaultInjection"


def test_short_names_of_every_kind_and_an_unknown_one() -> None:
    assert {resolve_kind(n).kind for n in ("sp", "ts", "tt", "htr", "mi")} == {
        "ServiceProfile", "TrafficSplit", "TrafficTarget", "HTTPRouteGroup", "MeshIngress"}  # fmt: skip
    assert resolve_kind("trafficsplits.split.smi-spec.io").kind == "TrafficSplit"
    with pytest.raises(UsageError) as caught:
        resolve_kind("pods")
    assert caught.value.exit_code == ExitCode.USAGE and "serviceprofiles (sp)" in (caught.value.hint or "")
    assert "serviceprofiles" in kind_names()


def test_get_lists_a_namespace_or_every_one(home: Path) -> None:
    out, _ = run(home, "get", "fi", "-n", "booksapp")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SUMMARY", "AGE"]
    assert lines[1].startswith("books-faults") and "books on GET /books: abort 10% (503)" in lines[1]
    out, _ = run(home, "get", "faultinjections", "-A", "-o", "wide")
    rows = [line.split()[:2] for line in out.splitlines()]
    assert rows == [["NAMESPACE", "NAME"], ["booksapp", "books-faults"], ["shop", "shop-faults"]]
    assert "faultinjection-shop-shop-faults.yaml" in out
    out, err = run(home, "get", "sp", "-n", "booksapp")
    assert out == "" and err == "No serviceprofiles found in namespace booksapp.\n"


def test_get_yaml_is_a_list_that_applies_back_unchanged(home: Path) -> None:
    out, _ = run(home, "get", "fi", "-A", "-o", "yaml")
    assert [r.key for r in parse_text(out)] == [("FaultInjection", "booksapp", "books-faults"),
                                                ("FaultInjection", "shop", "shop-faults")]  # fmt: skip
    (home.parent / "back.yaml").write_text(out)
    out, _ = run(home, "apply", "-f", str(home.parent / "back.yaml"))
    assert out == "faultinjection/books-faults unchanged\nfaultinjection/shop-faults unchanged\n"
    single, _ = run(home, "get", "ts", "books-canary", "-n", "booksapp", "-o", "json")
    assert '"kind": "TrafficSplit"' in single and '"List"' not in single


def test_get_of_a_missing_name_is_exit_1_and_a_name_with_a_list_is_refused(home: Path) -> None:
    with pytest.raises(MeshError) as caught:
        run(home, "get", "fi", "books-faults", "nope", "-n", "booksapp")
    assert caught.value.exit_code == ExitCode.FAILED and "faultinjection/nope not found" in caught.value.message
    with pytest.raises(UsageError):
        run(home, "get", "fi", "books-faults", "-A")


def test_get_names_an_invalid_file_and_lists_the_rest(home: Path) -> None:
    (home / "config" / "broken.yaml").write_text("kind: FaultInjection\nspec: {}\n")
    out, err = run(home, "get", "fi", "-A")
    assert "books-faults" in out and "broken.yaml" in err and err.startswith("warning: ")


def test_age_rounds_as_kubectl() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    ages = [get.age(now - timedelta(seconds=s), now) for s in (5, 119, 600, 4 * 3600, 3 * 86400)]
    assert ages == ["5s", "119s", "10m", "4h", "3d"]
    assert get.age(None, now) == "<unknown>"


def test_delete_by_file_removes_only_what_it_names(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = home / "config"
    before = sorted(p.name for p in config.iterdir())
    out, _ = run(home, "delete", "-f", "-", "--dry-run", stdin=FAULT, monkeypatch=monkeypatch)
    assert out == "faultinjection/books-faults deleted (dry run)\n"
    assert sorted(p.name for p in config.iterdir()) == before
    out, _ = run(home, "delete", "-f", "-", stdin=FAULT, monkeypatch=monkeypatch)
    assert out == "faultinjection/books-faults deleted\n"
    assert sorted(p.name for p in config.iterdir()) == [n for n in before if "books-faults" not in n]


def test_delete_rewrites_a_file_that_holds_other_resources_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    shared = home / "config" / "together.yaml"
    shared.write_text(FAULT + "---\n" + SPLIT)
    out, _ = run(home, "delete", "fi", "books-faults", "-n", "booksapp", "-o", "json")
    assert '"result": "deleted"' in out and str(shared) in out
    assert [r.key for r in parse_text(shared.read_text())] == [("TrafficSplit", "booksapp", "books-canary")]
    run(home, "delete", "trafficsplit", "books-canary", "-n", "booksapp")
    assert not shared.exists()


def test_delete_changes_nothing_when_any_document_is_invalid(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p.name: p.read_text() for p in (home / "config").iterdir()}
    broken = FAULT + "---\n" + SPLIT.replace("weight: 90", "weight: -1")
    with pytest.raises(ResourceError) as caught:
        run(home, "delete", "-f", "-", stdin=broken, monkeypatch=monkeypatch)
    assert caught.value.exit_code == ExitCode.USAGE and "nothing was deleted" in (caught.value.hint or "")
    assert {p.name: p.read_text() for p in (home / "config").iterdir()} == before


def test_delete_of_what_is_not_there_names_it_on_stderr_and_exits_1(home: Path) -> None:
    with pytest.raises(MeshError) as caught:
        run(home, "delete", "fi", "books-faults", "nope", "-n", "booksapp")
    assert caught.value.exit_code == ExitCode.FAILED and caught.value.message == "1 of 2 resources not found"
    assert not (home / "config" / "faultinjection-booksapp-books-faults.yaml").exists()  # the other one went
    out, err = run(home, "delete", "fi", "nope", "-n", "booksapp", "--ignore-not-found")
    assert (out, err) == ("", "")


def test_delete_usage_errors_and_kubernetes(home: Path) -> None:
    for args in (["delete"], ["delete", "fi"], ["delete", "fi", "x", "-f", "a.yaml"]):
        with pytest.raises(UsageError):
            run(home, *args)
    with pytest.raises(UsageError) as caught:
        run(home, "delete", "fi", "x", platform=PlatformName.KUBERNETES)
    assert "kubectl delete" in (caught.value.hint or "")
