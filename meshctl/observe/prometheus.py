"""The one door to Prometheus: instant queries through prometheus-api-client, errors translated.

Every PromQL query is recorded (text, duration, series) so callers can show it with --debug and tests
can count it. prometheus_api_client (and requests) are imported on first use, never at CLI start.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.errors import ExitCode, MeshError, UnreachableError

TIMEOUT_S = 5.0
HINT = (
    "pass the URL of the mesh's Prometheus with --prometheus-url URL, "
    "or run `meshctl check` to see why it does not answer"
)


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class QueryRecord:
    expr: str  # the PromQL text, or the API path of other calls
    seconds: float  # waiting for Prometheus' answer (connection set-up and imports excluded)
    series: int
    kind: str = "promql"  # "promql" | "api"


@dataclass
class PrometheusClient:
    url: str
    timeout_s: float = TIMEOUT_S
    on_query: Callable[[QueryRecord], None] | None = None
    queries: list[QueryRecord] = field(default_factory=list)  # PromQL queries only
    where: str | None = None  # how errors name it, when its URL means nothing to a user (a local relay)
    _connection: Any = None

    def query(self, expr: str) -> list[Sample]:
        """An instant query at Prometheus' now; NaN samples are dropped."""
        self._call(lambda c: c)  # connect (and import the library) before the clock starts
        started = time.perf_counter()
        result = self._call(lambda c: c.custom_query(expr, timeout=self.timeout_s))
        waited = time.perf_counter() - started
        samples = [s for s in self._samples(result) if not math.isnan(s.value)]
        record = QueryRecord(expr, waited, len(samples))
        self.queries.append(record)
        if self.on_query is not None:
            self.on_query(record)
        return samples

    def scrape_interval_s(self) -> float | None:
        """The longest scrape interval of the targets that carry a pod label (the proxies); None if unknown.

        Read from the targets API, which is not a PromQL query.
        """
        from meshctl.observe.window import parse_duration

        self._call(lambda c: c)  # connect (and import the library) before the clock starts
        started = time.perf_counter()
        found = self._call(lambda c: c.get_targets(state="active"))
        targets = found.get("activeTargets", []) if isinstance(found, dict) else []
        if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
            raise self._malformed("/api/v1/targets", "activeTargets is not a list of objects")
        if self.on_query is not None:
            self.on_query(QueryRecord("/api/v1/targets", time.perf_counter() - started, len(targets), "api"))
        intervals = [t.get("scrapeInterval") for t in targets if "pod" in (t.get("labels") or {})]
        seconds = [parse_duration(i, "scrapeInterval") for i in intervals if isinstance(i, str) and i]
        return float(max(seconds)) if seconds else None

    def _samples(self, result: Any) -> list[Sample]:
        """An instant vector's samples; a result of any other shape is an answer we cannot use, said in one
        line (a proxy or a web page answering in Prometheus' place, an API of another kind)."""
        if result is None:
            return []
        if not isinstance(result, list):
            raise self._malformed("/api/v1/query", f"the result is a {type(result).__name__}, not a vector")
        samples = []
        for item in result:
            try:
                metric, (_, value) = item["metric"], item["value"]
                samples.append(Sample({str(k): str(v) for k, v in dict(metric).items()}, float(value)))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise self._malformed("/api/v1/query", f"a sample is not {{metric, value}}: {str(item)[:80]}") from None
        return samples

    def _malformed(self, path: str, why: str) -> UnreachableError:
        return UnreachableError(f"{self._named}{path} does not answer like a Prometheus API ({why})", hint=HINT)

    @property
    def _named(self) -> str:
        return f"{self.where} at {self.url}" if self.where else self.url

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> Any:
        """The library's session, made (and the library imported) on first use."""
        if self._connection is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            # One quick retry, not the library's three with a backoff of seconds: an absent Prometheus
            # must be reported at once.
            retry = Retry(total=1, backoff_factor=0.05, status_forcelist=(502, 503, 504))
            self._connection = PrometheusConnect(url=self.url.rstrip("/"), retry=retry, timeout=self.timeout_s)
        return self._connection

    def _call(self, call: Callable[[Any], Any]) -> Any:
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            return call(self._connect())
        except requests.exceptions.JSONDecodeError:  # a web page, or nothing, where Prometheus' JSON should be
            raise UnreachableError(
                f"{self._named} does not answer like a Prometheus API (its answer is not JSON)", hint=HINT
            ) from None
        except requests.exceptions.Timeout:
            raise UnreachableError(
                f"Prometheus at {self._named} did not answer within {self.timeout_s:g}s", hint=HINT
            ) from None
        except requests.exceptions.RequestException as exc:
            raise UnreachableError(f"cannot reach Prometheus at {self._named}: {_reason(exc)}", hint=HINT) from None
        except PrometheusApiClientException as exc:
            raise _api_error(self._named, str(exc)) from None
        except (ValueError, KeyError, TypeError) as exc:  # JSON that is not a Prometheus answer
            raise UnreachableError(
                f"{self._named} does not answer like a Prometheus API ({type(exc).__name__}: {exc})", hint=HINT
            ) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host", "Max retries exceeded"):
        if known in text:
            return known.lower() if known != "Max retries exceeded" else "no answer after a retry"
    return text[:200]


_STATUS = re.compile(r"HTTP Status Code (\d+) \((.*)\)$", re.S)


def _api_error(url: str, message: str) -> MeshError:
    """A non-200 answer: a query Prometheus refused (our bug, or an old Prometheus) or not Prometheus at all."""
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else 0
    body = match.group(2) if match else message
    detail = re.search(r'"error":"((?:[^"\\]|\\.)*)"', body)
    if status in (400, 422) and detail:
        return MeshError(
            f"Prometheus at {url} refused a query: {detail.group(1)}",
            hint="run again with --debug to see the query; an older Prometheus may not support it",
            exit_code=ExitCode.FAILED,
        )
    return UnreachableError(f"{url} answered HTTP {status or '?'}: not a Prometheus API ({body[:120]})", hint=HINT)
