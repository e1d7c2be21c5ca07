"""Command-line settings shared by the demo services (flags, with environment defaults)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

NAMESPACE = "booksapp"
# The ports of the booksapp services (Linkerd's demo uses the same ones).
PORTS = {"webapp": 7000, "authors": 7001, "books": 7002, "ratings": 7003}


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    listen: str  # HOST:PORT the app serves on (its sidecar forwards inbound traffic here)
    outbound: str | None  # HOST:PORT of the sidecar's outbound listener; None: call services directly
    pod: str
    namespace: str
    failure_rate: float  # share of requests of the service's failing route answered with 500
    latency_ms: float  # mean added latency of the service's slow route
    access_log: bool

    def authority(self, service: str) -> str:
        """How this app names another service: `name:port`, resolved by the sidecar."""
        return f"{service}:{PORTS[service]}"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


def add_service_flags(parser: argparse.ArgumentParser, service: str) -> None:
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on")
    parser.add_argument("--outbound", help="HOST:PORT of the sidecar's outbound listener")
    parser.add_argument("--pod", default=f"{service}-0", help="pod name, shown in responses and logs")
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=_env_float("MESHCTL_DEMO_FAILURE_RATE", 0.0),
        help="share (0..1) of the failing route's requests answered with 500 [env MESHCTL_DEMO_FAILURE_RATE]",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=_env_float("MESHCTL_DEMO_LATENCY_MS", 0.0),
        help="mean latency added to the slow route [env MESHCTL_DEMO_LATENCY_MS]",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")


def settings_from(args: argparse.Namespace, service: str) -> ServiceSettings:
    if not 0.0 <= args.failure_rate <= 1.0:
        raise SystemExit(f"--failure-rate must be between 0 and 1, got {args.failure_rate}")
    if args.latency_ms < 0:
        raise SystemExit(f"--latency-ms must not be negative, got {args.latency_ms}")
    return ServiceSettings(
        service=service,
        listen=args.listen,
        outbound=args.outbound,
        pod=args.pod,
        namespace=args.namespace,
        failure_rate=args.failure_rate,
        latency_ms=args.latency_ms,
        access_log=args.access_log,
    )
