"""A loop that blocks once for 60 ms: what bench.stall_trace must catch (run by test_stall_trace)."""

from __future__ import annotations

import asyncio
import time


async def main() -> None:
    await asyncio.sleep(0.05)
    time.sleep(0.06)  # holds the loop: one stall
    await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main())
