"""What `tap`, `top` and `profile --tap` share: the filter flags, where each instance's tap listens,
and a live session over every instance that reports failures, drops and silence on stderr.

No stream ever hangs the command: an instance that cannot be tapped is named at once with its reason,
the others go on, and the session ends by itself when none is left.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from meshctl.cli.context import CliContext
from meshctl.errors import UnreachableError, UsageError
from meshctl.tapping.events import Dropped, RequestInit, TapEvent
from meshctl.tapping.filter import Filter
from meshctl.tapping.filter_syntax import parse_duration_us
from meshctl.tapping.store import TapStore

if TYPE_CHECKING:
    from meshctl.api import tap_pb2
    from meshctl.tapping.client import TapTarget
    from meshctl.targets import Target

IDLE_NOTE_S = 10.0  # silence before the "live, nothing matched" note
DROP_NOTE_S = 5.0  # at most one drop note per instance this often
MAX_BODY_CAP = 65_536
FILTER_HELP = "Filter expression, e.g. 'status=5xx or latency>=100ms' (see `meshctl tap --help`)."


def parse_size(text: str) -> int:
    """ "4KiB", "4096", "64KiB" → bytes."""
    m = re.fullmatch(r"(\d+)\s*(B|KiB|KB|k|K)?", text.strip())
    if m is None:
        raise UsageError(f"{text!r} is not a size", hint="give bytes or KiB, e.g. --max-body 4KiB")
    value = int(m.group(1)) * (1024 if m.group(2) in ("KiB", "KB", "k", "K") else 1)
    if not 0 < value <= MAX_BODY_CAP:
        raise UsageError(f"--max-body {text} is out of range", hint=f"give 1 B to {MAX_BODY_CAP // 1024} KiB")
    return value


def parse_seconds(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    return parse_duration_us(text, lambda m: UsageError(f"{flag}: {m}", hint=f"e.g. {flag} 10s")) / 1e6


TAP_PORT = 4190  # the proxy's tap listener, next to its admin port (4191)


def tap_targets(cli: CliContext, target: Target) -> list[TapTarget]:
    """Where each instance of `target` serves tap: `Platform.proxy_port` makes the tap port reachable (the
    proxy's own address locally, a port-forward through the API server on Kubernetes). The handles stay
    open for the life of the command."""
    from meshctl.errors import MeshError
    from meshctl.tapping.client import TapTarget

    platform = cli.platform
    targets = []
    for proxy in platform.select_proxies(target):
        try:
            address = platform.proxy_port(proxy, TAP_PORT).open()
        except MeshError as exc:
            targets.append(TapTarget(proxy.pod, None, exc.message))
            continue
        targets.append(TapTarget(proxy.pod, str(address)))
    return targets


def observe_request(
    keep: Filter, *, max_rps: int, instances: int, bodies: bool, max_body: int
) -> tap_pb2.ObserveRequest:
    """The Observe request; --max-rps is shared among the instances, as Linkerd shares it."""
    from meshctl.api import tap_pb2

    request = tap_pb2.ObserveRequest(limit=max(1, max_rps // max(1, instances)) if max_rps > 0 else 0)
    match = keep.to_proto()
    if match is not None:
        request.match.CopyFrom(match)
    if bodies:
        request.extract.bodies, request.extract.max_body_bytes = True, max_body
    return request


def colour(text: str, enabled: bool, red: bool) -> str:
    """Tap's one colour: failed requests, in the CLI's palette (so NO_COLOR, FORCE_COLOR and TERM=dumb hold)."""
    from meshctl.cli.style import Palette, Tone

    return Palette(enabled)(Tone.BAD, text) if red else text


class Session:
    """One live tap over many instances; iterate `events()`, then print `summary()`."""

    def __init__(
        self,
        cli: CliContext,
        targets: list[TapTarget],
        request: tap_pb2.ObserveRequest,
        *,
        duration_s: float | None = None,
        store: TapStore | None = None,
        notes: bool = True,
        idle_note_s: float = IDLE_NOTE_S,
    ) -> None:
        from meshctl.tapping.client import FanIn

        self.cli = cli
        self.targets = targets
        self.fanin = FanIn(targets, request)
        self.store = store if store is not None else TapStore()  # an empty store is falsy
        self.duration_s = duration_s
        self.idle_note_s = idle_note_s
        self.notes = notes  # drop notices on stderr (not with -o json, where they are data)
        self.states = {t.instance: "connecting" for t in targets}
        self.reasons: dict[str, str] = {}
        self._pending_drops: dict[str, tuple[int, int, float]] = {}  # instance -> not yet told, last note
        self.requests = 0
        self.events_seen = 0
        self.started = time.monotonic()

    def _note(self, text: str) -> None:
        self.cli.stderr.write(text + "\n")
        self.cli.stderr.flush()

    def events(self) -> Iterator[TapEvent]:
        from meshctl.tapping.client import StateChange

        self.fanin.start()
        last = time.monotonic()
        noted = False
        deadline = None if self.duration_s is None else self.started + self.duration_s
        try:
            while deadline is None or time.monotonic() < deadline:
                item = self.fanin.get(0.2)
                now = time.monotonic()
                if item is None:
                    live = [i for i, s in self.states.items() if s == "streaming"]
                    if not any(s in ("connecting", "streaming") for s in self.states.values()):
                        return
                    if live and not noted and now - last >= self.idle_note_s:
                        noted = True
                        self._note(f"tap: the stream is live ({len(live)} of {len(self.states)} proxies); "
                                   f"nothing matched in the last {self.idle_note_s:g}s")  # fmt: skip
                    continue
                if isinstance(item, StateChange):
                    self.states[item.instance] = item.state
                    self.store.instance_state(item.instance, item.state, item.reason)
                    if item.state == "failed":
                        self.reasons[item.instance] = item.reason
                        self._note(f"tap: {item.instance}: cannot tap: {item.reason}")
                    elif item.state == "ended" and item.reason != "stopped":
                        self.reasons[item.instance] = item.reason
                        self._note(f"tap: {item.instance}: {item.reason}")
                    continue
                last, noted = now, False
                self.events_seen += 1
                if isinstance(item, Dropped) and self.notes:
                    self._note_drops(item, now)
                elif isinstance(item, RequestInit):
                    self.requests += 1
                yield item
        finally:
            self.fanin.stop()

    def _note_drops(self, dropped: Dropped, now: float) -> None:
        """Drop notices on stderr, at most one per instance every DROP_NOTE_S (the counts add up)."""
        from meshctl.tapping.render import drop_note

        queue_full, rate_limited, _ = self._pending_drops.get(dropped.instance, (0, 0, 0.0))
        queue_full, rate_limited = queue_full + dropped.queue_full, rate_limited + dropped.rate_limited
        last = self._pending_drops.get(dropped.instance, (0, 0, -DROP_NOTE_S))[2]
        if now - last >= DROP_NOTE_S:
            self._note(drop_note(Dropped(dropped.instance, queue_full, rate_limited)))
            self._pending_drops[dropped.instance] = (0, 0, now)
        else:
            self._pending_drops[dropped.instance] = (queue_full, rate_limited, last)

    def check_reached(self) -> None:
        """UnreachableError when not one instance could be tapped."""
        if self.targets and all(self.states[t.instance] == "failed" for t in self.targets):
            raise UnreachableError(
                f"none of the {len(self.targets)} instances could be tapped (reasons above)",
                hint="`meshctl status` shows which proxies run; `meshctl check` says what is wrong",
            )

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        per = []
        for state in sorted(self.store.instances(), key=lambda i: i.name):
            if state.state == "failed":
                per.append(f"{state.name} failed")
            else:
                detail = f"{state.dropped} dropped" + (
                    f" ({state.rate_limited} rate-limited)" if state.rate_limited else ""
                )
                per.append(f"{state.name} {detail}")
        tapped = sum(1 for s in self.states.values() if s != "failed")
        return (f"tap: {self.requests} requests ({self.events_seen} events) from {tapped} of {len(self.states)} "
                f"proxies in {elapsed:.1f}s; " + ", ".join(per or ["no proxy answered"]))  # fmt: skip
