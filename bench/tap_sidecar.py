"""bench.sidecar with the proxy's tap listener: the one-hop arm of the tap benchmark.

    python -m bench.tap_sidecar --config proxy.json --identity-dir DIR --snapshot snapshot.json

The same Proxy, runtime and listeners as bench.sidecar (leaf signed from the run's issuer, discovery
snapshot installed directly, no control client); when the ProxyConfig has a `tap` listener it is started
exactly as `python -m meshctl.proxy` starts it (meshctl.proxy.main.start_tap), so `runtime.tap` is the
hub the request pipeline reads. Without `tap` the hub is never installed (runtime.tap stays None).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from google.protobuf import json_format

from bench.sidecar import issue
from meshctl.api import mesh_pb2
from meshctl.proxy.config import load_proxy_config


async def serve(config_path: Path, identity_dir: Path, snapshot_path: Path) -> None:
    from meshctl.proxy.main import Proxy, start_tap
    from meshctl.proxy.runtime import build_runtime

    config = load_proxy_config(config_path)
    snapshot = json_format.ParseDict(json.loads(snapshot_path.read_text()), mesh_pb2.Snapshot())
    loop = asyncio.get_running_loop()
    runtime = build_runtime(config, clock=loop.time)
    runtime.on_certificate(issue(identity_dir, config.identity))
    runtime.on_snapshot(snapshot)
    tap = await start_tap(config, runtime) if config.tap is not None else None
    proxy = Proxy(config, runtime)
    await proxy.start_listeners()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()
    if tap is not None:
        await tap.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tap_sidecar", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="ProxyConfig JSON file (with or without tap)")
    parser.add_argument("--identity-dir", type=Path, required=True, help="issuer.pem, issuer.key.pem, ca.pem")
    parser.add_argument("--snapshot", type=Path, required=True, help="mesh_pb2.Snapshot as JSON")
    args = parser.parse_args(argv)
    import uvloop

    from meshctl.errors import MeshError
    from meshctl.proxy.logs import setup_logging

    setup_logging("warn")
    try:
        uvloop.run(serve(args.config, args.identity_dir, args.snapshot))
    except MeshError as exc:
        print(f"bench.tap_sidecar: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
