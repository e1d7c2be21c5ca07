"""The idle connection pool: LIFO reuse, closed connections skipped, idle ones swept."""

from __future__ import annotations

from meshctl.proxy.h1.upstream import Pool


class Conn:
    def __init__(self) -> None:
        self.closed = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.closed = True


def test_reuse_most_recent_first_and_skip_closed() -> None:
    now = [0.0]
    pool: Pool[Conn] = Pool(lambda: now[0])
    a, b, c = Conn(), Conn(), Conn()
    pool.put("k", a)
    pool.put("k", b)
    pool.put("k", c)
    c.closed = True
    assert pool.take("k") is b
    assert pool.take("other") is None
    pool.discard("k", a)
    assert pool.take("k") is None


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
