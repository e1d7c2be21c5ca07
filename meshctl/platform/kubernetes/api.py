"""A narrow, typed door to the Kubernetes API through the official client.

The kubeconfig is loaded by `kubernetes.config` (contexts, certificates, tokens, exec plugins) and every
request goes through the client's own `ApiClient`; answers are read as JSON documents rather than model
objects, which keeps the untyped client behind four methods. Every request has a deadline and none is
retried, so an unreachable API server fails within its timeout instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from typing import Any

from meshctl.errors import ConfigError, MeshError, UnreachableError

CONNECT_TIMEOUT_S = 3.0
_PROXY_THREAD = "Kubernetes port forward proxy"  # the name of the client library's relay thread
READ_TIMEOUT_S = 10.0


class KubeError(MeshError):
    """The API server answered, with an error status."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class Forbidden(KubeError):
    pass


class NotFound(KubeError):
    pass


def _hint_for(status: int) -> str | None:
    if status == 401:
        return "the credentials of the kubeconfig were rejected: log in again or choose another --context"
    if status == 403:
        return "ask for the RBAC permission, or use a context with more rights (`meshctl check --pre` lists them)"
    return None


class KubeApi:
    """One cluster, as the kubeconfig context names it."""

    def __init__(self, client: Any, context: str, server: str) -> None:
        self._client = client
        self.context = context
        self.server = server
        self._lock = threading.Lock()
        self.requests = 0  # how many requests this client made (for tests and --debug)
        self._stream_client: Any = None
        self._stream_lock = threading.Lock()

    def get(self, path: str, query: dict[str, str] | None = None, *, timeout_s: float = READ_TIMEOUT_S) -> Any:
        return json.loads(self._call("GET", path, query, None, timeout_s))

    def post(self, path: str, body: dict[str, Any], *, timeout_s: float = READ_TIMEOUT_S) -> Any:
        return json.loads(self._call("POST", path, None, body, timeout_s))

    def patch(self, path: str, body: dict[str, Any], *, content_type: str, timeout_s: float = READ_TIMEOUT_S) -> Any:
        """A PATCH of the given kind (application/strategic-merge-patch+json, merge-patch, json-patch)."""
        return json.loads(self._call("PATCH", path, None, body, timeout_s, content_type=content_type))

    def raw(self, path: str, query: dict[str, str] | None = None, *, timeout_s: float = READ_TIMEOUT_S) -> bytes:
        """A GET whose answer is not JSON (the service proxy of a component's HTTP endpoint)."""
        data: bytes = self._call("GET", path, query, None, timeout_s, accept="*/*")
        return data

    def stream(self, path: str, query: dict[str, str] | None = None, *, timeout_s: float | None = None) -> Any:
        """A GET whose answer is read as it comes (a pod's log with follow=true): the urllib3 response, its
        body not read yet. `timeout_s=None` waits for data as long as the server keeps the stream open;
        `response.shutdown()` from another thread ends the wait."""
        return self._call("GET", path, query, None, timeout_s, accept="*/*", stream=True)

    def list(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection in one request (no `limit`: paging would make the number of
        requests grow with the size of the cluster)."""
        items: list[dict[str, Any]] = self.get(path, query).get("items") or []
        return items

    def portforward(self, namespace: str, pod: str, port: int) -> Any:
        """A `kubernetes.stream.ws_client.PortForward` to one port of a pod (websocket, v4.channel.k8s.io);
        `.socket(port)` is the connection to it. UnreachableError when the API server refuses or is away."""
        from kubernetes.client import ApiClient
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        # `portforward` swaps the ApiClient's transport for a websocket while it connects: that client serves
        # no other request, and one connect at a time uses it.
        with self._stream_lock:
            if self._stream_client is None:
                self._stream_client = ApiClient(self._client.configuration)
            with self._lock:
                self.requests += 1
            try:
                pods = _PodPortForwardApi(self._stream_client)
                before = set(threading.enumerate())
                forward = portforward(pods.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
                # The thread the library started for this forward (one connect at a time, under this lock):
                # whoever closes the forward waits for it first.
                started = [t for t in threading.enumerate() if t not in before and t.name.startswith(_PROXY_THREAD)]
                forward.proxy_thread = started[0] if started else None
                return forward
            except (ApiException, OSError) as exc:
                raise UnreachableError(
                    f"port-forward to {namespace}/{pod}:{port} through {self.server} failed: {_handshake_why(exc)}",
                    hint=f"check that the pod runs (`kubectl get pod -n {namespace} {pod}`) and that context "
                    f"{self.context!r} may create pods/portforward",
                ) from None

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: dict[str, Any] | None,
        timeout_s: float | None,
        accept: str = "application/json",
        content_type: str = "application/json",
        stream: bool = False,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self._client.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        with self._lock:
            self.requests += 1
        where = f"{self.server}{path}"
        try:
            response = self._client.call_api(*request, _request_timeout=(CONNECT_TIMEOUT_S, timeout_s))
            status = int(response.status)
            if stream and 200 <= status < 300:
                return response.response
            data: bytes = response.read()
        except (HTTPError, ApiException, OSError) as exc:
            raise UnreachableError(
                f"the Kubernetes API at {self.server} cannot be reached: {_why(exc)}",
                hint=f"check that the cluster of context {self.context!r} runs (`kubectl cluster-info`)",
            ) from None
        if 200 <= status < 300:
            return data
        message = _status_message(data) or f"{response.reason}"
        kind = NotFound if status == 404 else Forbidden if status in (401, 403) else KubeError
        raise kind(status, f"{method} {where}: {status} {message}", hint=_hint_for(status))


def _status_message(data: bytes) -> str:
    try:
        document = json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")[:200]
    return str(document.get("message") or "") if isinstance(document, dict) else ""


def _why(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if marker.lower() in text.lower():
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class _PodPortForwardApi:
    """The one method of the generated CoreV1Api that `kubernetes.stream.portforward` calls, serialised as the
    generated one does. Importing CoreV1Api itself builds some 250 pydantic models: seconds of a CLI's life."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client  # `portforward` finds the client here and swaps its transport

    def connect_get_namespaced_pod_portforward(self, name: str, namespace: str, ports: str, **options: Any) -> Any:
        request = self.api_client.param_serialize(
            "GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/portforward",
            query_params=[("ports", ports)], header_params={"Accept": "*/*"}, auth_settings=["BearerToken"],
        )  # fmt: skip
        return self.api_client.call_api(*request, _request_timeout=options.get("_request_timeout")).response


_HANDSHAKE = re.compile(r"Handshake status (?P<status>\d+) (?P<reason>[^-]*?)\s*-\+-\+-")
_MESSAGE = re.compile(r'"message":\s*"(?P<message>(?:[^"\\]|\\.)*)"')


def _handshake_why(exc: BaseException) -> str:
    """The API server's answer to a refused websocket upgrade ("404 Not Found: pods "x" not found"), which
    the client only passes on as text."""
    text = str(getattr(exc, "reason", None) or exc)
    status = _HANDSHAKE.search(text)
    if status is None:
        return _why(exc)
    message = _MESSAGE.search(text)
    detail = ": " + message["message"].replace('\\"', '"') if message else ""
    return f"{status['status']} {status['reason']}{detail}"


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def connect(context: str | None, config_file: str | None = None) -> KubeApi:
    """A client for the kubeconfig's context (`--context`, else its current context); ConfigError with a hint
    when there is no kubeconfig or no such context. Makes no request."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import ConfigException, list_kube_config_contexts, load_kube_config

    configuration = Configuration()
    # Read KUBECONFIG now, not when the client was imported (it may hold several paths, joined by ":").
    config_file = config_file or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    paths = [p for p in config_file.split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in paths):
        raise ConfigError(
            f"no kubeconfig for the kubernetes platform: {config_file} does not exist",
            hint="set KUBECONFIG (or create ~/.kube/config) and pick a context with --context",
        )
    try:
        contexts, current = list_kube_config_contexts(config_file)  # type: ignore[no-untyped-call]
        name = context or (current or {}).get("name")
        if context is not None and context not in {c.get("name") for c in contexts or []}:
            raise ConfigError(
                f"the kubeconfig has no context {context!r}",
                hint="`kubectl config get-contexts` lists them; drop --context to use the current one",
            )
        load_kube_config(config_file, context, client_configuration=configuration, persist_config=False)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise ConfigError(
            f"the kubeconfig {config_file} cannot be used: {exc}",
            hint="set KUBECONFIG (or create ~/.kube/config) and pick a context with --context",
        ) from None
    except OSError as exc:
        raise ConfigError(f"the kubeconfig cannot be read: {exc}", hint="set KUBECONFIG to a readable file") from None
    configuration.retries = False  # no hidden retries: the deadline of a request is its timeout
    return KubeApi(ApiClient(configuration), str(name or ""), str(configuration.host))
