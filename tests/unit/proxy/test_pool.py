"""The idle connection pool: most recent last per key, idle ones swept."""

from __future__ import annotations

from meshctl.proxy.h1.upstream import Pool


class Conn:
    def __init__(self) -> None:
        self.closed = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.closed = True


def test_put_keeps_the_most_recent_last_per_key_and_discard_forgets() -> None:
    # The dialer pops the last open one (tests/unit/proxy/test_h1_handover.py: a closed one is never taken).
    now = [5.0]
    pool: Pool[Conn] = Pool(lambda: now[0])
    a, b, c = Conn(), Conn(), Conn()
    pool.put("k", a)
    pool.put("k", b)
    pool.put("other", c)
    assert pool.idle == {"k": [a, b], "other": [c]} and b.idle_since == 5.0
    pool.discard("k", a)
    assert pool.idle["k"] == [b] and len(pool) == 2


def test_sweep_and_limits() -> None:
    now = [0.0]
    pool: Pool[Conn] = Pool(lambda: now[0], idle_s=60.0, max_idle=1)
    old, extra = Conn(), Conn()
    pool.put("k", old)
    pool.put("k", extra)
    assert extra.closed  # over the per-key limit
    now[0] = 61.0
    assert pool.sweep() == 1 and old.closed and len(pool) == 0
    fresh = Conn()
    pool.put("k", fresh)
    pool.close_all()
    assert fresh.closed
