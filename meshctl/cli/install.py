"""`meshctl install [--crds | --control-plane]`: the manifests of the mesh in a cluster, on stdout for
`kubectl apply -f -`. It reads no cluster; the objects are rendered by meshctl.platform.kubernetes.manifests.

-o yaml (the default) prints one document per object; -o json prints a `kind: List`, as kubectl does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from meshctl import __version__
from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import UsageError

INSTALL_EXAMPLES = examples(
    ("The whole mesh: CRDs, control plane, proxy injector, Prometheus", "meshctl install | kubectl apply -f -"),
    ("The CRDs first, then the rest (the CRDs must exist before their resources)",
     "meshctl install --crds | kubectl apply -f - && meshctl install --control-plane | kubectl apply -f -"),
    ("With your own trust anchor and issuer (made with step, cfssl or openssl)",
     "meshctl install --identity-trust-anchors-file ca.crt --identity-issuer-certificate-file issuer.crt "
     "--identity-issuer-key-file issuer.key | kubectl apply -f -"),
    ("Every object as one kubectl List in JSON", "meshctl install -o json > meshctl.json"),
)  # fmt: skip


def manifests(
    *,
    crds_only: bool,
    control_plane_only: bool,
    anchors: Path | None = None,
    issuer_cert: Path | None = None,
    issuer_key: Path | None = None,
) -> list[dict[str, Any]]:
    from meshctl.platform.kubernetes.manifests import InstallPlan, render
    from meshctl.platform.kubernetes.manifests.pki import (
        generate_identity,
        generate_injector_tls,
        identity_from_files,
    )

    if crds_only and control_plane_only:
        raise UsageError(
            "--crds and --control-plane exclude each other", hint="pass one of them, or neither for everything"
        )
    if crds_only and (anchors or issuer_cert or issuer_key):
        raise UsageError("--crds prints no identity: the identity files are for the control plane",
                         hint="drop the --identity-* flags, or --crds")  # fmt: skip
    plan = InstallPlan(version=__version__, crds=not control_plane_only, control_plane=not crds_only)
    if plan.control_plane:
        identity = identity_from_files(anchors, issuer_cert, issuer_key) or generate_identity()
        plan = InstallPlan(plan.version, plan.crds, plan.control_plane, identity, generate_injector_tls())
    return render(plan)


def _block_dumper() -> Any:
    """PyYAML's safe dumper with multi-line strings (PEM, JSON, prometheus.yml) as literal blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # a schema shared by two fields is written out twice, not as an &anchor

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def render_text(documents: list[dict[str, Any]], output: OutputFormat) -> str:
    if output is OutputFormat.JSON:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, indent=2) + "\n"
    import yaml

    body: str = yaml.dump_all(
        documents, Dumper=_block_dumper(), sort_keys=False, allow_unicode=True, width=120, explicit_start=True
    )
    return f"# meshctl {__version__}: `meshctl install | kubectl apply -f -`\n{body}"


def register(app: typer.Typer) -> None:
    @app.command("install", epilog=INSTALL_EXAMPLES)
    def install_command(
        ctx: typer.Context,
        crds: bool = typer.Option(False, "--crds", help="Only the CustomResourceDefinitions."),
        control_plane: bool = typer.Option(False, "--control-plane", help="Everything but the CRDs."),
        anchors: Path | None = typer.Option(None, "--identity-trust-anchors-file", metavar="FILE",
                                            help="PEM trust anchors the issuer chains to (default: a new one)."),
        issuer_cert: Path | None = typer.Option(None, "--identity-issuer-certificate-file", metavar="FILE",
                                                help="PEM issuer certificate, signed by a trust anchor."),
        issuer_key: Path | None = typer.Option(None, "--identity-issuer-key-file", metavar="FILE",
                                               help="PEM key of the issuer certificate (ECDSA P-256)."),
        ignore_cluster: bool = typer.Option(False, "--ignore-cluster",
                                            help="Accepted as `linkerd install` does; install never reads a cluster."),
    ) -> None:  # fmt: skip
        """Print the mesh's Kubernetes manifests (CRDs, control plane, proxy injector, Prometheus) for kubectl."""
        cli: CliContext = ctx.obj
        documents = manifests(
            crds_only=crds,
            control_plane_only=control_plane,
            anchors=anchors,
            issuer_cert=issuer_cert,
            issuer_key=issuer_key,
        )
        cli.stdout.write(render_text(documents, cli.output))
