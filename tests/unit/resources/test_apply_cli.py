"""`meshctl apply -f`: validate everything first, then write one file per resource, kubectl-style output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer

from meshctl.cli import apply
from meshctl.cli.context import CliContext, PlatformName
from meshctl.cli.flags import accept_global_flags
from meshctl.errors import ExitCode, UsageError
from meshctl.resources import ResourceError

PROFILE = """\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: {name}.booksapp.svc.cluster.local
  namespace: booksapp
spec:
  routes:
  - name: GET /{name}
    condition: {{method: GET, pathRegex: /{name}}}
    timeout: {timeout}
"""
BOOKS_FILE = "serviceprofile-booksapp-books.booksapp.svc.cluster.local.yaml"


def _profile(name: str = "books", timeout: str = "300ms") -> str:
    return PROFILE.format(name=name, timeout=timeout)


def _run(
    home: Path,
    *args: str,
    stdin: str = "",
    platform: PlatformName = PlatformName.LOCAL,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> str:
    out = io.StringIO()
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliContext(home=home, stdout=out, platform_name=platform)

    apply.register(app)
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    command = typer.main.get_command(app)
    accept_global_flags(command)  # -o and the other global flags, as meshctl's own entry point adds them
    command.main(args=["apply", *args], standalone_mode=False)
    return out.getvalue()


def test_created_then_unchanged_then_configured(tmp_path: Path) -> None:
    source = tmp_path / "books.yaml"
    source.write_text(_profile())
    home = tmp_path / "home"
    assert _run(home, "-f", str(source)) == "serviceprofile/books.booksapp.svc.cluster.local created\n"
    written = home / "config" / BOOKS_FILE
    assert "apiVersion: meshctl.io/v1alpha1" in written.read_text()
    assert _run(home, "-f", str(source)) == "serviceprofile/books.booksapp.svc.cluster.local unchanged\n"
    source.write_text(_profile(timeout="1s"))
    assert _run(home, "-f", str(source)) == "serviceprofile/books.booksapp.svc.cluster.local configured\n"
    assert "timeout: 1s" in written.read_text()


def test_directory_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "profiles"
    directory.mkdir()
    (directory / "a.yaml").write_text(_profile("authors"))
    (directory / "b.yml").write_text(_profile("books"))
    (directory / "notes.txt").write_text("not a resource")
    home = tmp_path / "home"
    output = _run(home, "-f", str(directory), "-f", "-", stdin=_profile("webapp"), monkeypatch=monkeypatch)
    assert output.splitlines() == [
        "serviceprofile/authors.booksapp.svc.cluster.local created",
        "serviceprofile/books.booksapp.svc.cluster.local created",
        "serviceprofile/webapp.booksapp.svc.cluster.local created",
    ]
    assert len(list((home / "config").iterdir())) == 3


def test_nothing_is_written_when_any_document_is_invalid(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(_profile())
    bad.write_text(_profile("authors") + "---\n" + _profile("webapp", timeout="soon"))
    home = tmp_path / "home"
    with pytest.raises(ResourceError) as caught:
        _run(home, "-f", str(good), "-f", str(bad))
    assert caught.value.message == (
        f'{bad}: document 2: spec.routes[0].timeout: expected a duration such as "300ms", "1.5s" or "1m30s", got "soon"'
    )
    assert caught.value.hint is not None and caught.value.hint.startswith("nothing was applied")
    assert caught.value.exit_code is ExitCode.USAGE
    assert not (home / "config").exists()


def test_the_same_resource_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    (tmp_path / "b.yaml").write_text(_profile(timeout="1s"))
    with pytest.raises(ResourceError, match=r"b.yaml: document 1: metadata.name: serviceprofile/books.* also defined"):
        _run(tmp_path / "home", "-f", str(tmp_path))


def test_json_output_and_dry_run(tmp_path: Path) -> None:
    source = tmp_path / "books.yaml"
    source.write_text(_profile())
    home = tmp_path / "home"
    result = json.loads(_run(home, "-f", str(source), "-o", "json", "--dry-run"))
    assert result == {
        "items": [
            {
                "resource": "serviceprofile/books.booksapp.svc.cluster.local",
                "kind": "ServiceProfile",
                "name": "books.booksapp.svc.cluster.local",
                "namespace": "booksapp",
                "result": "created",
                "file": str(home / "config" / BOOKS_FILE),
            }
        ],
        "dryRun": True,
    }
    assert not (home / "config").exists()
    assert _run(home, "-f", str(source), "--dry-run").endswith("created (dry run)\n")


def test_missing_path_and_empty_directory_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        _run(tmp_path, "-f", str(tmp_path / "nope.yaml"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no .yaml, .yml or .json files"):
        _run(tmp_path, "-f", str(tmp_path / "empty"))


def test_kubernetes_platform_points_to_kubectl(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_profile())
    with pytest.raises(UsageError) as caught:
        _run(tmp_path, "-f", str(tmp_path / "a.yaml"), platform=PlatformName.KUBERNETES)
    assert caught.value.hint is not None and "kubectl apply -f" in caught.value.hint


def test_schema_mistakes_are_refused_with_their_field_and_nothing_is_written(tmp_path: Path) -> None:
    """The kind's openAPIV3 schema (the one its CRD carries) is checked first: unknown fields with a
    did-you-mean, wrong types and missing fields, each once, every document of every file."""
    split = tmp_path / "split.yaml"
    split.write_text(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: books, namespace: booksapp}\n"
        "spec:\n  service: books\n  backends:\n  - {service: books-v1, wieght: 90}\n"
        "  - {service: books-v2, weight: ten}\n"
    )
    fault = tmp_path / "fault.yaml"
    fault.write_text(
        "apiVersion: meshctl.io/v1alpha1\nkind: FaultInjection\nmetadata: {name: f, namespace: booksapp}\n"
        "spec: {service: books, delay: {percent: 5}}\n"
    )
    home = tmp_path / "home"
    with pytest.raises(ResourceError) as caught:
        _run(home, "-f", str(split), "-f", str(fault))
    assert caught.value.message.splitlines() == [
        "4 problems:",
        f"  {split}: document 1: spec.backends[0].wieght: unknown field (did you mean 'weight'?)",
        f"  {split}: document 1: spec.backends[0].weight: missing "
        "(its relative share: 0 gives it nothing, as in a blue-green switch)",
        f'  {split}: document 1: spec.backends[1].weight: expected an integer from 0 to 1000000, got "ten"',
        f"  {fault}: document 1: spec.delay.fixedDelay: missing (how long, such as 200ms)",
    ]
    assert not (home / "config").exists()
