"""A fake Kubernetes API server that speaks the real REST protocol, for the kubernetes platform's tests.

A real HTTP server on 127.0.0.1 (a thread) serving JSON as kube-apiserver does: `/version`, core and
group collections (`/api/v1/pods`, `/api/v1/namespaces/{ns}/configmaps/{name}`, `/apis/apps/v1/...`,
custom resources once their CRD exists), `kind: XList` shapes with `apiVersion` and `metadata`,
`labelSelector` (`k=v`, `k!=v`, `k`, `!k`) and `fieldSelector` (`metadata.name`, `metadata.namespace`),
`Status` objects for 401/404, SelfSubjectAccessReview (POST), the service proxy
(`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/...`) to handlers the test installs, and a pod's
port-forward (websocket, `v4.channel.k8s.io`, see portforward.py) to the local address the test names
with `forward_to(namespace, pod, port, address)`, a pod's `ephemeralcontainers` subresource (PATCH and
GET, with the kubelet's status updates: see ephemeral.py), and a container's log (`pods/{name}/log` with
`container`, `follow`, `sinceSeconds`, `tailLines` and `timestamps`, as text/plain, chunked while it follows)
from the lines the test writes with `write_log`. Every request
is counted per method and path, so tests can assert that the client's request count does not depend on
the size of the cluster. `kubeconfig(path)` writes a kubeconfig pointing at it with a bearer token.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.ephemeral import Kubelet, patch_ephemeral
from tests.fakes.pod_logs import LOG_PATH, PodLogs, status_object
from tests.fakes.portforward import V4_PROTOCOL, PortForwardSession, accept_key

# group/version + plural -> (kind, namespaced)
BUILTIN: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "pods"): ("Pod", True),
    ("v1", "namespaces"): ("Namespace", False),
    ("v1", "configmaps"): ("ConfigMap", True),
    ("v1", "secrets"): ("Secret", True),
    ("v1", "services"): ("Service", True),
    ("apps/v1", "deployments"): ("Deployment", True),
    ("discovery.k8s.io/v1", "endpointslices"): ("EndpointSlice", True),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"): ("CustomResourceDefinition", False),
}

ProxyHandler = Callable[[str, dict[str, str]], tuple[int, bytes]]  # (path, query) -> (status, body)
AccessJudge = Callable[[dict[str, Any]], bool]  # resourceAttributes -> allowed


def _matches_labels(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _matches_fields(obj: dict[str, Any], selector: str) -> bool:
    metadata = obj.get("metadata") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        field = {"metadata.name": "name", "metadata.namespace": "namespace"}.get(key.rstrip("="))
        if field is None:
            raise ValueError(f'field label not supported: "{key}"')
        if metadata.get(field) != value:
            return False
    return True


class FakeKubeApi:
    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
        self.version: dict[str, str] = {"major": "1", "minor": "30", "gitVersion": "v1.30.4", "platform": "linux/amd64"}
        self.store: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.proxies: dict[tuple[str, str, str], ProxyHandler] = {}  # (namespace, service, port)
        self.pod_ports: dict[tuple[str, str, int], tuple[str, int]] = {}  # (namespace, pod, port) -> address
        self.pod_logs = PodLogs(self.find)
        self.judge: AccessJudge = lambda attributes: True
        self.kubelet = Kubelet()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- the cluster's objects ------------------------------------------------------------------------

    def add(self, api_version: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        kind, _ = self._kind(api_version, plural) or ("", False)
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        obj.setdefault("metadata", {}).setdefault("uid", f"uid-{sum(len(v) for v in self.store.values())}")
        self.store.setdefault((api_version, plural), []).append(obj)
        return obj

    def remove(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        items = self.store.get((api_version, plural), [])
        items[:] = [o for o in items if (o["metadata"]["name"], o["metadata"].get("namespace")) != (name, namespace)]

    def find(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        for obj in self.store.get((api_version, plural), []):
            if obj["metadata"]["name"] == name and obj["metadata"].get("namespace") == namespace:
                return obj
        raise KeyError(f"{plural}/{name}")

    def forward_to(self, namespace: str, pod: str, port: int, address: tuple[str, int]) -> None:
        """What listens on `port` inside the pod: a real local address the port-forward dials."""
        self.pod_ports[(namespace, pod, port)] = address

    def write_log(self, namespace: str, pod: str, container: str, line: str, at: float | None = None) -> None:
        """A line the container writes (at `at`, epoch seconds; now by default); followers get it at once."""
        self.pod_logs.write(namespace, pod, container, line, at)

    def end_log(self, namespace: str, pod: str, container: str) -> None:
        """The container stopped: its log ends, and so does a follow of it."""
        self.pod_logs.end(namespace, pod, container)

    def _kind(self, api_version: str, plural: str) -> tuple[str, bool] | None:
        if (api_version, plural) in BUILTIN:
            return BUILTIN[(api_version, plural)]
        group, _, version = api_version.rpartition("/")
        for crd in self.store.get(("apiextensions.k8s.io/v1", "customresourcedefinitions"), []):
            spec = crd.get("spec") or {}
            served = {v.get("name") for v in spec.get("versions") or [] if v.get("served")}
            if spec.get("group") == group and (spec.get("names") or {}).get("plural") == plural and version in served:
                return spec["names"]["kind"], spec.get("scope") == "Namespaced"
        return None

    # --- serving --------------------------------------------------------------------------------------

    def start(self) -> FakeKubeApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without NODELAY, Nagle and delayed ACKs add 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._upgrade()
                elif LOG_PATH.match(urllib.parse.urlsplit(self.path).path):
                    self._log()
                else:
                    self._answer("GET", b"")

            def _log(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                with fake._lock:
                    fake.requests[f"GET {parts.path}"] += 1
                segments = [urllib.parse.unquote(s) for s in parts.path.strip("/").split("/")]
                query = dict(urllib.parse.parse_qsl(parts.query))
                refusal: tuple[int, dict[str, Any]] | None = (401, status_object(401, "Unauthorized", "Unauthorized"))
                if self.headers.get("Authorization") == f"Bearer {fake.token}":
                    refusal = fake.pod_logs.refusal(segments[3], segments[5], query)
                if refusal is not None:
                    payload = json.dumps(refusal[1]).encode()
                    self.send_response(refusal[0])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                key = (segments[3], segments[5], fake.pod_logs.container(segments[3], segments[5], query))
                follow = query.get("follow") == "true"
                lines, seen = fake.pod_logs.lines(key, query)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                if not follow:
                    body = "".join(lines).encode()
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                # A follow streams (chunked, as the API server relays the kubelet) until the container ends,
                # the client goes or the fake stops.
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                try:
                    self._chunk("".join(lines).encode())
                    for line in fake.pod_logs.follow(key, query, seen):
                        self._chunk(line.encode())
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass

            def _chunk(self, data: bytes) -> None:
                if data:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

            def _upgrade(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                with fake._lock:
                    fake.requests[f"GET {parts.path}"] += 1
                self.close_connection = True
                query = urllib.parse.parse_qs(parts.query)
                refusal = fake.forward_refusal(parts.path, query, self.headers.get("Authorization"))
                offered = [p.strip() for p in (self.headers.get("Sec-WebSocket-Protocol") or "").split(",")]
                if refusal is None and V4_PROTOCOL not in offered:
                    refusal = 400, status_object(400, "BadRequest", f"subprotocol {V4_PROTOCOL} not offered")
                if refusal is not None:
                    payload = json.dumps(refusal[1]).encode()
                    self.send_response(refusal[0])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                segments = [urllib.parse.unquote(s) for s in parts.path.strip("/").split("/")]
                namespace, pod = segments[3], segments[5]
                ports = [int(p) for value in query["ports"] for p in value.split(",")]
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept_key(self.headers.get("Sec-WebSocket-Key", "")))
                self.send_header("Sec-WebSocket-Protocol", V4_PROTOCOL)
                self.end_headers()
                self.wfile.flush()
                targets = [fake.pod_ports.get((namespace, pod, port)) for port in ports]
                PortForwardSession(self.rfile, self.connection, ports, targets, pod).run()

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_PATCH(self) -> None:  # noqa: N802
                self._answer("PATCH", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _answer(self, method: str, body: bytes) -> None:
                parts = urllib.parse.urlsplit(self.path)
                with fake._lock:
                    fake.requests[f"{method} {parts.path}"] += 1
                # /version is public, as system:public-info-viewer makes it on real clusters.
                if parts.path != "/version" and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    code, payload = 401, json.dumps(status_object(401, "Unauthorized", "Unauthorized")).encode()
                else:
                    query = dict(urllib.parse.parse_qsl(parts.query))
                    content_type = self.headers.get("Content-Type") or ""
                    code, payload = fake.handle(method, parts.path, query, body, content_type)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-kube-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self.pod_logs.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, path: Path, context: str = "fake") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake-cluster", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-user", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake-cluster", "user": "fake-user"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def forward_refusal(
        self, path: str, query: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        """Why a port-forward request is refused (status and Status object), or None to upgrade."""
        segments = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        shape = len(segments) == 7 and segments[:3] == ["api", "v1", "namespaces"]
        if not (shape and segments[4] == "pods" and segments[6] == "portforward"):
            return 404, status_object(404, "NotFound", f"the server could not find the requested resource ({path})")
        if authorization != f"Bearer {self.token}":
            return 401, status_object(401, "Unauthorized", "Unauthorized")
        namespace, pod = segments[3], segments[5]
        attributes = {"namespace": namespace, "verb": "create", "resource": "pods", "subresource": "portforward"}
        allowed = self.judge(attributes | {"name": pod})
        if not allowed:
            return 403, status_object(403, "Forbidden", f'pods "{pod}" is forbidden: cannot create pods/portforward')
        try:
            self.find("v1", "pods", pod, namespace)
        except KeyError:
            return 404, status_object(404, "NotFound", f'pods "{pod}" not found')
        try:
            ports = [int(p) for value in query.get("ports", []) for p in value.split(",")]
        except ValueError:
            ports = []
        if not ports or not all(0 < p < 65536 for p in ports):
            return 400, status_object(400, "BadRequest", "query parameter ports must name ports between 1 and 65535")
        return None

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        segments = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        try:
            if segments == ["version"]:
                return 200, json.dumps(self.version).encode()
            if method == "POST" and path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
                return self._review(json.loads(body))
            if len(segments) == 7 and segments[:3] == ["api", "v1", "namespaces"] and segments[4] == "pods" \
                    and segments[6] == "ephemeralcontainers":  # fmt: skip
                return self._ephemeral(method, segments[3], segments[5], body, content_type)
            if method == "GET":
                return self._get(segments, query)
        except ValueError as exc:
            return 400, json.dumps(status_object(400, "BadRequest", str(exc))).encode()
        return self._not_found(path)

    def _ephemeral(self, method: str, namespace: str, pod: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        verb = {"GET": "get", "PATCH": "patch"}.get(method)
        if verb is None:
            return 405, json.dumps(status_object(405, "MethodNotAllowed", f"{method} is not supported")).encode()
        attributes = {"namespace": namespace, "verb": verb, "resource": "pods", "subresource": "ephemeralcontainers"}
        if not self.judge(attributes | {"name": pod}):
            message = (f'pods "{pod}" is forbidden: User "fake-user" cannot {verb} resource "pods/ephemeralcontainers" '
                       f'in API group "" in the namespace "{namespace}"')  # fmt: skip
            return 403, json.dumps(status_object(403, "Forbidden", message)).encode()
        try:
            obj = self.find("v1", "pods", pod, namespace)
        except KeyError:
            return 404, json.dumps(status_object(404, "NotFound", f'pods "{pod}" not found')).encode()
        if method == "GET":
            with self.kubelet.lock:
                return 200, json.dumps(obj).encode()
        code, document = patch_ephemeral(obj, content_type, json.loads(body), self.kubelet)
        return code, json.dumps(document).encode()

    def _not_found(self, path: str) -> tuple[int, bytes]:
        return 404, json.dumps(
            status_object(404, "NotFound", f"the server could not find the requested resource ({path})")
        ).encode()

    def _get(self, segments: list[str], query: dict[str, str]) -> tuple[int, bytes]:
        if segments[0] == "api" and len(segments) >= 2:
            api_version, rest = segments[1], segments[2:]
        elif segments[0] == "apis" and len(segments) >= 3:
            api_version, rest = f"{segments[1]}/{segments[2]}", segments[3:]
        else:
            return self._not_found("/" + "/".join(segments))
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
            if api_version == "v1" and rest[0] == "services" and len(rest) >= 3 and rest[2] == "proxy":
                return self._proxy(namespace, rest[1], "/" + "/".join(rest[3:]), query)
        kind = self._kind(api_version, rest[0]) if rest else None
        if kind is None or len(rest) > 2:
            return self._not_found("/" + "/".join(segments))
        items = [
            o
            for o in self.store.get((api_version, rest[0]), [])
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        if len(rest) == 2:
            found = [o for o in items if o["metadata"]["name"] == rest[1]]
            if not found:
                singular = kind[0].lower()
                return 404, json.dumps(
                    status_object(404, "NotFound", f'{rest[0]} "{rest[1]}" not found') | {"details": {"kind": singular}}
                ).encode()
            return 200, json.dumps(found[0]).encode()
        if "labelSelector" in query:
            items = [o for o in items if _matches_labels(o["metadata"].get("labels") or {}, query["labelSelector"])]
        if "fieldSelector" in query:
            items = [o for o in items if _matches_fields(o, query["fieldSelector"])]
        document = {
            "kind": f"{kind[0]}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }
        return 200, json.dumps(document).encode()

    def _proxy(self, namespace: str, target: str, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        scheme_service_port = target.split(":")
        service, port = (
            (scheme_service_port[-2], scheme_service_port[-1]) if len(scheme_service_port) >= 2 else (target, "")
        )
        handler = self.proxies.get((namespace, service, port))
        if handler is None:
            return 503, json.dumps(
                status_object(503, "ServiceUnavailable", f'no endpoints available for service "{service}"')
            ).encode()
        return handler(path, query)

    def _review(self, review: dict[str, Any]) -> tuple[int, bytes]:
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        allowed = self.judge(attributes)
        answer = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": review.get("spec") or {},
            "status": {"allowed": allowed} | ({} if allowed else {"reason": "RBAC: access denied"}),
        }
        return 201, json.dumps(answer).encode()
