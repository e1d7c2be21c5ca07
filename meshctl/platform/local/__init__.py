"""The local platform: the whole mesh as processes on loopback addresses, state under one directory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.errors import UsageError

if TYPE_CHECKING:
    from meshctl.platform.base import Capability, Platform
    from meshctl.platform.local.platform import LocalPlatform


def as_local(platform: Platform, capability: Capability, command: str) -> LocalPlatform:
    """The platform as the local one, for a command that needs `capability` (which only it offers today):
    refused with the capability's hint elsewhere. The class test stays inside this package."""
    from meshctl.platform.local.platform import LocalPlatform

    platform.require(capability, command)
    # A platform other than this one offering the capability would be served here once it exists.
    if not isinstance(platform, LocalPlatform):
        raise UsageError(f"{command} runs on the local platform, not on {platform.name}", hint="use --platform local")
    return platform
