"""glibc malloc settings for the control plane: one arena, and freed pages given back after bursts.

One arena was measured with grpcio's threads (82 -> 75 KiB per connected proxy at 300 proxies); the
server is now one thread, and the setting stays for the threads that remain (the injector webhook,
asyncio.to_thread). MALLOC_ARENA_MAX in the environment (glibc's own knob) wins: nothing is changed then.
A handshake frees buffers between allocations that last (grpc_server.py), so trim() returns whole free
pages once a burst of handshakes is over.
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


def trim() -> bool:
    """Give freed heap pages back to the OS (glibc's malloc_trim); False where there is no such call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, ImportError):
        return False
    return bool(malloc_trim(0))
