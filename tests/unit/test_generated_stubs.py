"""Generated gRPC stubs are committed; this keeps them in step with their .proto files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# canonical .proto → where it is compiled from (its import path decides the stubs' package)
PROTOS = {
    "meshctl/api/mesh.proto": "meshctl/api/mesh.proto",
    "meshctl/demo/proto/ratings.proto": "meshctl/demo/proto/ratings.proto",
    "tap/tap.proto": "meshctl/api/tap.proto",  # the contract lives in tap/, its stubs in meshctl.api
}
SUFFIXES = ["_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"]


def generate(proto: str, out: Path) -> None:
    """The one way stubs are made: `python -m tests.unit.test_generated_stubs` rewrites them in place."""
    plugins = Path(sys.executable).parent
    compiled_as = PROTOS[proto]
    with tempfile.TemporaryDirectory() as staging:
        # Staged at its package path so the stubs import each other as `meshctl.api.…`.
        staged = Path(staging) / compiled_as
        staged.parent.mkdir(parents=True)
        shutil.copyfile(ROOT / proto, staged)
        subprocess.run(
            [
                sys.executable, "-m", "grpc_tools.protoc", f"-I{staging}",
                f"--python_out={out}", f"--grpc_python_out={out}", f"--mypy_out={out}", f"--mypy_grpc_out={out}",
                f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
                compiled_as,
            ],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_stubs_match_proto(proto: str, tmp_path: Path) -> None:
    if shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mypy-protobuf is not installed; run `bash .ci/setup`")
    generate(proto, tmp_path)
    stem = PROTOS[proto].removesuffix(".proto")
    for suffix in SUFFIXES:
        fresh = (tmp_path / (stem + suffix)).read_text()
        committed = (ROOT / (stem + suffix)).read_text()
        assert fresh == committed, f"{stem + suffix} is stale: run `python -m tests.unit.test_generated_stubs`"


if __name__ == "__main__":
    for each in PROTOS:
        generate(each, ROOT)
