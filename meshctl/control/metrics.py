"""The control plane's metrics, rendered in Prometheus text format 0.0.4 for its admin endpoint."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from meshctl import __version__
from meshctl.metrics.exposition import header, label_set, sample


class ControlMetrics:
    """Counters kept by the services; gauges read at scrape time through `gauges`."""

    def __init__(self) -> None:
        self.start_time = time.time()
        self.certificates_issued = 0
        self.certify_refused: Counter[str] = Counter()  # by gRPC status name
        self.snapshots_sent = 0  # complete ones
        self.deltas_sent = 0
        self.watch_streams = 0
        # (snapshot version, invalid resource files), set once the store exists
        self.gauges: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def render(self) -> bytes:
        out: list[str] = []
        version, invalid = self.gauges()
        header(out, "control_certificates_issued_total", "counter", "Workload certificates issued.")
        sample(out, "control_certificates_issued_total", "", self.certificates_issued)
        header(out, "control_certify_refused_total", "counter", "Certify requests refused, by gRPC status.")
        for code, count in sorted(self.certify_refused.items()) or [("unauthenticated", 0)]:
            sample(out, "control_certify_refused_total", label_set([("code", code)]), count)
        header(out, "control_snapshots_sent_total", "counter", "Complete snapshots sent to proxies.")
        sample(out, "control_snapshots_sent_total", "", self.snapshots_sent)
        header(out, "control_deltas_sent_total", "counter", "Snapshot deltas (only what changed) sent to proxies.")
        sample(out, "control_deltas_sent_total", "", self.deltas_sent)
        header(out, "control_watch_streams", "gauge", "Open Discovery.Watch streams.")
        sample(out, "control_watch_streams", "", self.watch_streams)
        header(out, "control_snapshot_version", "gauge", "Version of the current snapshot.")
        sample(out, "control_snapshot_version", "", version)
        header(
            out,
            "control_resource_files_invalid",
            "gauge",
            "Resource files whose content on disk is invalid (their last good content is served).",
        )
        sample(out, "control_resource_files_invalid", "", invalid)
        header(out, "control_build_info", "gauge", "Control plane version.")
        sample(out, "control_build_info", label_set([("version", __version__)]), 1)
        header(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.")
        sample(out, "process_start_time_seconds", "", self.start_time)
        return ("\n".join(out) + "\n").encode()
