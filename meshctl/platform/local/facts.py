"""What the local platform's checks share, loaded once per run (see registry.Fact): the state directory's
layout, the mesh record `meshctl up` wrote, and the platform as the local one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.errors import MeshError
from meshctl.health.registry import CheckContext, Fact
from meshctl.platform.base import Capability
from meshctl.platform.local import as_local
from meshctl.platform.local.state import Layout

if TYPE_CHECKING:
    from meshctl.platform.local.platform import LocalPlatform
    from meshctl.platform.local.state import MeshRecord


def local_platform(ctx: CheckContext) -> LocalPlatform:
    return as_local(ctx.platform, Capability.LIFECYCLE, "this check")


def _layout(ctx: CheckContext) -> Layout:
    if ctx.options.home is None:
        raise MeshError("no state directory given")
    return Layout(ctx.options.home)


def _record(ctx: CheckContext) -> MeshRecord:
    return local_platform(ctx).record()


LAYOUT: Fact[Layout] = Fact("layout", _layout)
RECORD: Fact[MeshRecord] = Fact("mesh record", _record)
