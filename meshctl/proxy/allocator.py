"""glibc malloc settings for the proxy process: made once at start, and one trim once it is up.

uvloop reads TLS records with SSLObject.read(256 KiB): each read allocates a 256 KiB bytes object and
shrinks it to the record's size. Above glibc's mmap threshold (128 KiB until a large block is freed,
which a proxy's history may or may not have done) that is an mmap, an mremap and a munmap per read —
three system calls and fresh zeroed pages per request, which strace showed on every request of the
two-hop bench. With the threshold at 512 KiB the block comes from the heap, and a 1 MiB trim
threshold keeps the heap from being shrunk and grown again (brk) around it. Only the pages a read
touches become resident. Once start-up is over, `release_free_memory` hands back to the kernel the
free pages start-up left in the heap. MALLOC_MMAP_THRESHOLD_ in the environment (glibc's own knob)
wins: nothing is changed then.
"""

from __future__ import annotations

import os
import sys
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 512 * 1024
TRIM_THRESHOLD = 1024 * 1024

_libc: Any = None


def tune_allocator() -> bool:
    """True when glibc took the settings (False elsewhere: another libc, another OS, or an operator's env)."""
    global _libc
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError, ImportError):
        return False
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return False
    _libc = libc
    return True


def release_free_memory() -> None:
    """Give free heap pages back to the kernel (glibc's malloc_trim), after start-up made its garbage."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
