"""glibc malloc settings for the control plane, made before grpc starts its threads.

glibc gives each thread that allocates its own arena; grpc's threads touch every connection's buffers,
so a thousand connections spread their allocations (and the free space between them) over several
arenas. One arena measured less RSS per connected proxy at 300 proxies: 82 -> 75 KiB with 4 KiB TLS
frames (74 -> 71 with 2 KiB ones). The threads are mostly idle, so the shared lock costs nothing that
shows. MALLOC_ARENA_MAX in the
environment (glibc's own knob) wins: nothing is changed then.
"""

from __future__ import annotations

import os
import sys

M_ARENA_MAX = -8


def one_arena() -> bool:
    """True when glibc took the setting (False elsewhere: another libc, another OS, or an operator's env)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, ImportError):
        return False
    return bool(mallopt(M_ARENA_MAX, 1) == 1)
