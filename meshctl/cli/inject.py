"""`meshctl inject` and `meshctl uninject`: add the mesh to workload manifests, or take it out again.

Manifests go to stdout (re-serialised, key order kept), one summary line per resource to stderr, as
`linkerd inject` prints them; what cannot be injected passes through unchanged with its reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshctl.cli.context import CliContext
from meshctl.cli.examples import examples
from meshctl.errors import ConfigError, UsageError

INJECT_EXAMPLES = examples(
    ("Mark a deployment's pods for the proxy injector and apply it", "meshctl inject books.yaml | kubectl apply -f -"),
    ("Mesh every workload of a namespace in place",
     "kubectl get deploy -n booksapp -o yaml | meshctl inject - | kubectl apply -f -"),
    ("Write the proxy and init containers yourself, with a debug sidecar",
     "meshctl inject --manual --enable-debug-sidecar k8s/ -o json"),
)  # fmt: skip
UNINJECT_EXAMPLES = examples(
    ("Take the mesh out of a manifest", "meshctl uninject books.yaml | kubectl apply -f -"),
    ("Out of every deployment of a namespace",
     "kubectl get deploy -n booksapp -o yaml | meshctl uninject - | kubectl apply -f -"),
)  # fmt: skip


def read_inputs(source: str) -> list[tuple[str, str]]:
    """(name for messages, text) of each input: a file, the manifests of a directory, or stdin."""
    from meshctl.resources.loader import MAX_FILE_BYTES, resource_files

    if source == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"{source}: no such file or directory", hint="give a manifest file, a directory or - (stdin)")
    files = resource_files(path) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"{source}: no .yaml, .yml or .json files in this directory")
    inputs = []
    for file in files:
        name = str(Path(source) / file.name) if path.is_dir() else source
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise UsageError(f"{name}: larger than {MAX_FILE_BYTES} bytes", hint="split the manifest")
            inputs.append((name, file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{name}: cannot read: {reason}", hint="give a readable UTF-8 manifest") from None
    return inputs


def _run(cli: CliContext, source: str, inject: bool, manual: bool = False, debug: bool = False) -> None:
    from meshctl import __version__
    from meshctl.inject.documents import dump_documents, inject_documents, parse_documents, uninject_documents
    from meshctl.inject.pod import InjectOptions

    documents = [d for name, text in read_inputs(source) for d in parse_documents(text, name)]
    if inject:
        out, reports = inject_documents(documents, InjectOptions(__version__, manual=manual, debug_sidecar=debug))
    else:
        out, reports = uninject_documents(documents)
    cli.stdout.write(dump_documents(out, cli.output.value))
    cli.stderr.write("".join(f"{report}\n" for report in reports))


def register(app: typer.Typer) -> None:
    @app.command("inject", epilog=INJECT_EXAMPLES)
    def inject_command(
        ctx: typer.Context,
        source: str = typer.Argument(..., metavar="FILE|DIR|-", help="Manifest file, directory or - for stdin."),
        manual: bool = typer.Option(
            False, "--manual", help="Add the proxy and init containers yourself instead of the injector annotation."
        ),
        debug_sidecar: bool = typer.Option(
            False, "--enable-debug-sidecar", help="Also add the meshctl-debug container (tshark, tcpdump, curl)."
        ),
    ) -> None:
        """Add the mesh's proxy to the pod templates of Kubernetes manifests (idempotent)."""
        _run(ctx.obj, source, True, manual, debug_sidecar)

    @app.command("uninject", epilog=UNINJECT_EXAMPLES)
    def uninject_command(
        ctx: typer.Context,
        source: str = typer.Argument(..., metavar="FILE|DIR|-", help="Manifest file, directory or - for stdin."),
    ) -> None:
        """Remove what `meshctl inject` added (annotations, containers, volumes) from Kubernetes manifests."""
        _run(ctx.obj, source, False)
