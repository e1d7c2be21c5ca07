"""The demo's MeshIngress: what `up` writes is what `apply` accepts, exposes webapp, and a user's edit is kept."""

from __future__ import annotations

from pathlib import Path

from meshctl.platform.local.exposure import ingress_filename, write_demo_ingress
from meshctl.platform.local.state import Layout
from meshctl.resources import load_file
from meshctl.resources.mesh_ingress import IngressPath, IngressRule, MeshIngressSpec


def test_the_demo_ingress_exposes_webapp_and_an_edit_is_kept(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    written = write_demo_ingress(layout, "booksapp")
    assert written == str(layout.config / ingress_filename("booksapp"))
    (resource,) = load_file(Path(written))
    assert resource.kind == "MeshIngress" and resource.namespace == "booksapp"
    assert resource.spec == MeshIngressSpec((IngressRule(None, (IngressPath("/", "webapp", None, 7000),)),))
    Path(written).write_text(Path(written).read_text().replace("webapp", "books"))
    assert write_demo_ingress(layout, "booksapp") is None
    assert "books" in Path(written).read_text()
