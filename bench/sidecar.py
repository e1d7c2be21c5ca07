"""One of our proxies without a control plane, for the bench arm whose upstream is not meshed.

    python -m bench.sidecar --config proxy.json --identity-dir DIR --snapshot snapshot.json

The control plane only lists meshed endpoints (each with a workload identity), so the one-hop arm —
client sidecar → nginx in plaintext — needs a discovery snapshot it cannot serve. This process reads
the same ProxyConfig JSON as `python -m meshctl.proxy`, signs its own leaf from the run's issuer (the CA
code the control plane uses) and installs the snapshot directly, as the control client would. The same
Proxy, runtime, listeners and metrics carry the traffic; only the control client thread (and gRPC) and
the admin endpoint are absent, so its memory is not the sidecar's — the bench reports RSS of the
two-hop proxies, which run the real entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from google.protobuf import json_format

from meshctl.api import mesh_pb2
from meshctl.control.ca import sign_csr
from meshctl.pki.keys import make_csr, new_key, private_key_pem, read_pair
from meshctl.pki.pem import IdentityFiles, read_certificates
from meshctl.proxy.config import load_proxy_config
from meshctl.proxy.control_client import IssuedCertificate


def issue(identity_dir: Path, identity: str) -> IssuedCertificate:
    """A leaf for `identity` signed by the run's issuer, shaped as the control client delivers it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    files = IdentityFiles(identity_dir)
    issuer = read_pair(files.issuer_cert, files.issuer_key)
    anchors = read_certificates(files.anchor_cert)
    key = new_key()
    leaf = sign_csr(make_csr(identity, key), identity, issuer)
    return IssuedCertificate(
        key_pem=private_key_pem(key),
        cert_chain_pem=leaf.public_bytes(Encoding.PEM) + issuer.cert.public_bytes(Encoding.PEM),
        trust_anchors_pem=b"".join(a.public_bytes(Encoding.PEM) for a in anchors),
        identity=identity,
        not_after=leaf.not_valid_after_utc,
    )


async def serve(config_path: Path, identity_dir: Path, snapshot_path: Path) -> None:
    from meshctl.proxy.main import Proxy, start_tap
    from meshctl.proxy.runtime import build_runtime

    config = load_proxy_config(config_path)
    snapshot = json_format.ParseDict(json.loads(snapshot_path.read_text()), mesh_pb2.Snapshot())
    loop = asyncio.get_running_loop()
    runtime = build_runtime(config, clock=loop.time)
    runtime.on_certificate(issue(identity_dir, config.identity))
    runtime.on_snapshot(snapshot)
    # A `tap` listener in the config is started as `python -m meshctl.proxy` starts it (the tap benchmark's
    # arm); without one the hub is never installed and runtime.tap stays None.
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
    parser = argparse.ArgumentParser(prog="python -m bench.sidecar", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="ProxyConfig JSON file")
    parser.add_argument("--identity-dir", type=Path, required=True, help="issuer.pem, issuer.key.pem, ca.pem")
    parser.add_argument("--snapshot", type=Path, required=True, help="mesh_pb2.Snapshot as JSON")
    args = parser.parse_args(argv)
    import uvloop

    from meshctl.errors import MeshError
    from meshctl.proxy.allocator import tune_allocator
    from meshctl.proxy.logs import setup_logging

    setup_logging("warn")
    tune_allocator()  # as `python -m meshctl.proxy` does
    try:
        uvloop.run(serve(args.config, args.identity_dir, args.snapshot))
    except MeshError as exc:
        print(f"bench.sidecar: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
