"""Pod logs through the API server, as `kubectl logs` reads them: GET /api/v1/namespaces/{ns}/pods/{pod}/log
with `container`, `follow`, `sinceSeconds`, `tailLines` and `timestamps=true`.

The API's RFC 3339 stamp in front of every line orders the lines of several pods (whatever the container
itself writes) and is taken off before the line is shown. The body is read as it arrives, so a follow
streams and a large log is never held whole.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from meshctl.errors import UnreachableError
from meshctl.platform.kubernetes.api import KubeApi, KubeError, quote
from meshctl.platform.kubernetes.conventions import DEBUG_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER
from meshctl.platform.logs import LogLine, LogQuery, LogStream, Source, line_time

if TYPE_CHECKING:
    from meshctl.platform.kubernetes.pods import Pod

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
READ_TIMEOUT_S = 30.0  # without follow: the whole answer is due within this
MESH_CONTAINERS = frozenset({PROXY_CONTAINER, DEBUG_CONTAINER, INIT_CONTAINER})


def container_for(pod: Pod, source: Source) -> str | None:
    """The container whose log a source means: the proxy's, else the workload's own (the pod's default
    container, else its first that the mesh did not add); None when the pod has none such."""
    names = [c.name for c in pod.containers]
    if source is Source.PROXY:
        return PROXY_CONTAINER if PROXY_CONTAINER in names else None
    default = pod.annotations.get(DEFAULT_CONTAINER_ANNOTATION)
    if default in names:
        return default
    return next((n for n in names if n not in MESH_CONTAINERS), None)


def log_query(container: str, query: LogQuery) -> dict[str, str]:
    params = {"container": container, "timestamps": "true"}
    if query.follow:
        params["follow"] = "true"
    if query.since_s is not None:
        params["sinceSeconds"] = str(max(1, math.ceil(query.since_s)))
    if query.tail is not None:
        params["tailLines"] = str(query.tail)
    return params


def split_stamp(raw: str) -> tuple[str, float | None]:
    """("line", epoch seconds) from the API's "2026-11-29T08:41:32.123456789Z line"."""
    stamp, sep, text = raw.partition(" ")
    moment = line_time(stamp) if sep else None
    return (text, moment) if moment is not None else (raw, line_time(raw))


class PodLogStream(LogStream):
    def __init__(self, api: KubeApi, pod: Pod, container: str, query: LogQuery) -> None:
        super().__init__(pod.name)
        self.api = api
        self.pod = pod
        self.container = container
        self.query = query
        self._response: Any = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def lines(self) -> Iterator[LogLine]:
        path = f"/api/v1/namespaces/{quote(self.pod.namespace)}/pods/{quote(self.pod.name)}/log"
        timeout = None if self.query.follow else READ_TIMEOUT_S
        try:
            response = self.api.stream(path, log_query(self.container, self.query), timeout_s=timeout)
        except KubeError as exc:
            raise KubeError(
                exc.status,
                f"{self.pod.ref} ({self.container}): {refusal(exc)}",
                hint=exc.hint or f"`kubectl describe pod -n {self.pod.namespace} {self.pod.name}` says why",
            ) from None
        with self._lock:
            self._response = response
            if self._closed.is_set():
                _shut(response)
        try:
            yield from self._read(response)
        finally:
            with contextlib.suppress(Exception):
                response.release_conn()

    def _read(self, response: Any) -> Iterator[LogLine]:
        pending = b""
        try:
            for chunk in response.stream(64 * 1024, decode_content=True):
                *complete, pending = (pending + chunk).split(b"\n")
                for raw in complete:
                    text, moment = split_stamp(raw.decode("utf-8", "replace").rstrip("\r"))
                    yield LogLine(self.instance, text, moment)
        except Exception as exc:  # urllib3's errors when a follow is shut down, or when the server goes away
            if not self._closed.is_set():
                raise UnreachableError(
                    f"the log of {self.pod.ref} ({self.container}) broke off: {type(exc).__name__}",
                    hint=f"run the command again; `kubectl get pod -n {self.pod.namespace} {self.pod.name}` "
                    "says whether the pod still runs",
                ) from None
        if pending and not self._closed.is_set():
            text, moment = split_stamp(pending.decode("utf-8", "replace"))
            yield LogLine(self.instance, text, moment)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._response is not None:
                _shut(self._response)


def _shut(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.shutdown()  # unblocks a read waiting in another thread


def refusal(exc: KubeError) -> str:
    """The API server's reason for not serving a log, without the request it answered."""
    _, _, reason = exc.message.partition(f": {exc.status} ")
    return reason or exc.message
