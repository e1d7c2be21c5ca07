"""Loop stall tracer: runs a Python module (the proxy) with a watchdog that says what stalls its event loop.

    python -m bench.stall_trace --out FILE [--threshold-ms 5] -m meshctl.proxy --config proxy.json

Inside the traced process, a 1 ms timer on the event loop records how late it fires (timer lateness:
what every request on the loop waits at least), and a watchdog thread, when the loop has not run that
timer for --threshold-ms, takes the loop thread's Python stack once per stall. Garbage collections are
timed through gc.callbacks. At exit (SIGTERM) the report goes to --out: lateness percentiles, the stacks
seen during stalls by count, collections by generation with their longest pause, and the involuntary
context switches (the kernel taking the CPU away) over the run. The tracer costs a timer per ms and a
thread wake-up every 2 ms: compare runs traced alike.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import runpy
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

TICK_S = 0.001
WATCH_S = 0.002


class Tracer:
    def __init__(self, out: Path, threshold_s: float) -> None:
        self.out = out
        self.threshold_s = threshold_s
        self.lateness_ms: list[float] = []
        self.beat = time.perf_counter()
        self.loop_thread: int | None = None
        self.stacks: Counter[str] = Counter()
        self.stalls = 0
        self.gc: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_start = 0.0
        self._started = time.monotonic()
        self._switches = _ctxt_switches()
        self._stop = threading.Event()

    # -- on the loop ----------------------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_thread = threading.get_ident()
        due = time.perf_counter() + TICK_S

        def tick() -> None:
            nonlocal due
            now = time.perf_counter()
            self.beat = now
            if len(self.lateness_ms) < 2_000_000:
                self.lateness_ms.append((now - due) * 1000.0)
            due = now + TICK_S
            loop.call_later(TICK_S, tick)

        loop.call_later(TICK_S, tick)
        threading.Thread(target=self._watch, name="stall-watchdog", daemon=True).start()

    # -- the watchdog ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        captured_for = 0.0
        while not self._stop.wait(WATCH_S):
            beat = self.beat
            if time.perf_counter() - beat < self.threshold_s or beat == captured_for or self.loop_thread is None:
                continue
            captured_for = beat
            frame = sys._current_frames().get(self.loop_thread)
            if frame is None:
                continue
            self.stalls += 1
            stack = traceback.extract_stack(frame)[-6:]
            self.stacks[" <- ".join(f"{f.name} ({Path(f.filename).name}:{f.lineno})" for f in reversed(stack))] += 1

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc[int(info["generation"])].append((time.perf_counter() - self._gc_start) * 1000.0)

    # -- at exit --------------------------------------------------------------------------------------
    def report(self) -> None:
        self._stop.set()
        late = sorted(self.lateness_ms)

        def pct(p: float) -> float:
            return late[min(len(late) - 1, int(p / 100.0 * len(late)))] if late else 0.0

        switches = [b - a for a, b in zip(self._switches, _ctxt_switches(), strict=True)]
        lines = [
            f"run {time.monotonic() - self._started:.1f} s; 1 ms timer lateness (ms): p50 {pct(50):.3f} "
            f"p90 {pct(90):.3f} p99 {pct(99):.3f} p99.9 {pct(99.9):.3f} max {late[-1] if late else 0:.3f} "
            f"({len(late)} ticks)",
            f"stalls over {self.threshold_s * 1000:g} ms: {self.stalls}; context switches voluntary "
            f"{switches[0]}, involuntary {switches[1]}",
        ]
        for gen, pauses in self.gc.items():
            if pauses:
                lines.append(f"gc gen{gen}: {len(pauses)} collections, {sum(pauses):.1f} ms in all, "
                             f"longest {max(pauses):.2f} ms")  # fmt: skip
        lines.append("loop thread's stack during stalls (innermost first):")
        lines += [f"{n:6d}  {stack}" for stack, n in self.stacks.most_common(15)]
        self.out.write_text("\n".join(lines) + "\n")


def _ctxt_switches() -> tuple[int, int]:
    values = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in values:
                values[key] = int(value)
    except OSError:
        pass
    return values["voluntary_ctxt_switches"], values["nonvoluntary_ctxt_switches"]


def install(out: Path, threshold_s: float) -> Tracer:
    """Trace the first event loop that runs a task in this process."""
    tracer = Tracer(out, threshold_s)
    gc.callbacks.append(tracer.on_gc)
    atexit.register(tracer.report)
    policy = asyncio.get_event_loop_policy()
    real_new = policy.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        loop = real_new()
        if tracer.loop_thread is None:
            loop.call_soon(tracer.attach, loop)
        return loop

    policy.new_event_loop = new_event_loop  # type: ignore[method-assign]
    try:
        import uvloop

        real_run = uvloop.run

        def new_uv_loop() -> uvloop.Loop:
            loop = uvloop.new_event_loop()
            if tracer.loop_thread is None:
                loop.call_soon(tracer.attach, loop)
            return loop

        def run(main: Any, **kwargs: Any) -> Any:  # uvloop.run binds its loop factory at definition
            kwargs.setdefault("loop_factory", new_uv_loop)
            return real_run(main, **kwargs)

        uvloop.run = run
    except ImportError:
        pass
    return tracer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stall_trace", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where the report goes at exit")
    parser.add_argument("--threshold-ms", type=float, default=5.0, help="a loop this late is stalled")
    parser.add_argument("-m", dest="module", required=True, help="the module to run, as python -m")
    args, rest = parser.parse_known_args()
    install(args.out, args.threshold_ms / 1000.0)
    sys.argv = [args.module, *rest]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
