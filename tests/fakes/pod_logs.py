"""Containers' logs in the fake API server, served as GET /api/v1/namespaces/{ns}/pods/{name}/log answers.

The query parameters a client sends (`container`, `follow`, `sinceSeconds`, `tailLines`, `timestamps`) act as
on a real cluster: without `container` a pod of several containers is refused with the list of them, an
unknown container with "is not valid for pod", a container that never started with "is waiting to start",
invalid bounds with 422; `timestamps=true` puts the kubelet's RFC 3339 stamp (nine fractional digits) in
front of each line; `tailLines` takes the last lines, `sinceSeconds` those of the last seconds; `follow`
streams what is written afterwards until the container ends.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

LOG_PATH = re.compile(r"^/api/v1/namespaces/[^/]+/pods/[^/]+/log$")
Key = tuple[str, str, str]  # (namespace, pod, container)


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _log_line(moment: float, line: str, timestamps: bool) -> str:
    """A line as the kubelet serves it: with timestamps=true, RFC 3339 with nine fractional digits first."""
    if not timestamps:
        return line + "\n"
    whole = int(moment)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((moment - whole) * 1e9):09d}Z"
    return f"{stamp} {line}\n"


class PodLogs:
    def __init__(self, find: Callable[..., dict[str, Any]]) -> None:
        self._find = find  # FakeKubeApi.find: the pod objects the test added
        self.lines_of: dict[Key, list[tuple[float, str]]] = {}
        self.ended: set[Key] = set()  # containers that stopped: a follow of them ends
        self._written = threading.Condition()
        self._stopping = False

    def write(self, namespace: str, pod: str, container: str, line: str, at: float | None = None) -> None:
        with self._written:
            self.lines_of.setdefault((namespace, pod, container), []).append((time.time() if at is None else at, line))
            self._written.notify_all()

    def end(self, namespace: str, pod: str, container: str) -> None:
        with self._written:
            self.ended.add((namespace, pod, container))
            self._written.notify_all()

    def stop(self) -> None:
        with self._written:
            self._stopping = True
            self._written.notify_all()

    def _pod_containers(self, namespace: str, pod: str) -> list[str] | None:
        try:
            found = self._find("v1", "pods", pod, namespace)
        except KeyError:
            return None
        return [str(c.get("name")) for c in (found.get("spec") or {}).get("containers") or []]

    def container(self, namespace: str, pod: str, query: dict[str, str]) -> str:
        names = self._pod_containers(namespace, pod) or []
        return query.get("container") or (names[0] if len(names) == 1 else "")

    def refusal(self, namespace: str, pod: str, query: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The API server's refusals of a log request, with its Status objects and messages."""
        names = self._pod_containers(namespace, pod)
        if names is None:
            return 404, status_object(404, "NotFound", f'pods "{pod}" not found')
        for field, least in (("sinceSeconds", 1), ("tailLines", 0)):
            if field in query and not (query[field].lstrip("-").isdigit() and int(query[field]) >= least):
                bound = "greater than 0" if least else "greater than or equal to 0"
                message = f'PodLogOptions "{pod}" is invalid: {field}: Invalid value: {query[field]}: must be {bound}'
                return 422, status_object(422, "Invalid", message)
        container = query.get("container")
        if container is None:
            if len(names) != 1:
                message = f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]"
                return 400, status_object(400, "BadRequest", message)
            container = names[0]
        if container not in names:
            return 400, status_object(400, "BadRequest", f"container {container} is not valid for pod {pod}")
        statuses = (self._find("v1", "pods", pod, namespace).get("status") or {}).get("containerStatuses") or []
        state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
        if "waiting" in state and not self.lines_of.get((namespace, pod, container)):
            reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
            message = f'container "{container}" in pod "{pod}" is waiting to start: {reason}'
            return 400, status_object(400, "BadRequest", message)
        return None

    def lines(self, key: Key, query: dict[str, str]) -> tuple[list[str], int]:
        """What is logged so far (the last tailLines, of those the ones of the last sinceSeconds), and how many
        lines were written before (where a follow goes on)."""
        with self._written:
            lines = list(self.lines_of.get(key, []))
        written = len(lines)
        if "tailLines" in query:
            tail = int(query["tailLines"])
            lines = lines[-tail:] if tail else []
        if "sinceSeconds" in query:
            cutoff = time.time() - int(query["sinceSeconds"])
            lines = [(t, line) for t, line in lines if t >= cutoff]
        return [_log_line(t, line, query.get("timestamps") == "true") for t, line in lines], written

    def follow(self, key: Key, query: dict[str, str], seen: int) -> Iterator[str]:
        """Lines written after the first `seen`, as they are written, until the container ends or the fake
        stops."""
        while True:
            with self._written:
                while len(self.lines_of.get(key, [])) == seen and key not in self.ended and not self._stopping:
                    self._written.wait(0.5)
                fresh = self.lines_of.get(key, [])[seen:]
                seen += len(fresh)
                done = key in self.ended or self._stopping
            for moment, line in fresh:
                yield _log_line(moment, line, query.get("timestamps") == "true")
            if done and not fresh:
                return

