"""Capabilities instead of class tests: what a platform cannot do is refused in one line with a hint
(exit 2), before anything connects to a cluster; the platform is opened from a plain spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.cli.app import main
from meshctl.cli.context import CliContext, PlatformName
from meshctl.errors import UsageError
from meshctl.platform.base import CAPABILITIES, Capability, PlatformSpec, open_platform, require
from meshctl.platform.local.platform import LocalPlatform


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (["up"], "lifecycle"),
        (["down"], "lifecycle"),
        (["apply", "-f", "-"], "resource-files"),
        (["check", "--fix"], "fix"),
    ],
)
def test_kubernetes_refuses_what_only_the_local_platform_does(
    args: list[str], needs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # refused before any kubeconfig is read
    assert main(["--platform", "kubernetes", *args]) == 2
    captured = capsys.readouterr()
    error, hint = captured.err.splitlines()
    assert error.startswith("Error: meshctl ")
    assert error.endswith(f"is not available on the kubernetes platform (it needs {needs})")
    assert hint.startswith("hint: ") and captured.out == ""


def test_every_capability_has_a_hint_and_platforms_declare_theirs() -> None:
    for capability in Capability:
        platform = next(name for name, caps in CAPABILITIES.items() if capability not in caps)
        with pytest.raises(UsageError) as caught:
            require(platform, capability, "meshctl x")
        assert caught.value.hint
    assert Capability.LIFECYCLE in LocalPlatform.capabilities
    assert Capability.PORT_FORWARD not in LocalPlatform.capabilities


def test_the_cli_builds_a_plain_spec_from_its_flags(tmp_path: Path) -> None:
    cli = CliContext(platform_name=PlatformName.LOCAL, namespace="booksapp", kube_context="prod", home=tmp_path)
    spec = cli.platform_spec()
    assert spec == PlatformSpec(name="local", home=tmp_path, namespace="booksapp", context="prod")
    platform = open_platform(spec)
    assert isinstance(platform, LocalPlatform) and platform.home == tmp_path
    with pytest.raises(UsageError, match="unknown platform"):
        open_platform(PlatformSpec(name="nomad"))
