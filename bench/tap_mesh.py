"""The real sidecar entry point with its tap listener, for the memory budget of a tapped proxy.

bench.sidecar has no control client, so its RSS is not the sidecar's (bench/README.md). This starts
bench.run's two-hop mesh — `python -m meshctl.proxy` twice, certified and fed by `python -m
meshctl.control` — with the tap listener on the client-side proxy, whose outbound listener the load hits.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.configs import CLIENT_POD, MESH_SERVICE, SERVER_POD, authority
from bench.procs import Proc, Processes, free_port, http_ok, port_open, wait_for
from bench.topology import LOAD_CPU, PROXY_CPU, START_TIMEOUT_S, Arm, plan_mesh, python_env, write_mesh_files


@dataclass
class TappedMesh:
    arm: Arm  # load → client proxy (tapped) → mTLS → server proxy → nginx
    client: Proc  # the proxy whose memory is judged
    tap_address: str


def add_tap(config_path: Path, port: int) -> None:
    """Turn the tap listener on in a ProxyConfig file."""
    config = json.loads(config_path.read_text())
    config["tap"] = {"listen": f"127.0.0.1:{port}"}
    config_path.write_text(json.dumps(config, indent=2))


def start_tapped_mesh(procs: Processes, tmp: Path, nginx_port: int) -> TappedMesh:
    plan = plan_mesh(tmp, nginx_port)
    control_json, configs = write_mesh_files(plan)
    tap_port = free_port()
    add_tap(configs[CLIENT_POD], tap_port)
    env = python_env()
    control = procs.start("mesh-control", [sys.executable, "-m", "meshctl.control", "--config", str(control_json)],
                          cpu=LOAD_CPU, env=env)  # fmt: skip
    wait_for("the control plane to listen", partial(port_open, "127.0.0.1", plan.control_port), START_TIMEOUT_S,
             [control])  # fmt: skip
    proxies = {
        pod: procs.start(f"proxy-{pod}", [sys.executable, "-m", "meshctl.proxy", "--config", str(configs[pod])],
                         cpu=PROXY_CPU, env=env)  # fmt: skip
        for pod in (SERVER_POD, CLIENT_POD)
    }
    everyone = [control, *proxies.values()]
    for pod, ports in ((SERVER_POD, plan.server), (CLIENT_POD, plan.client)):
        ready = f"http://127.0.0.1:{ports.admin}/ready"
        wait_for(f"{pod} to be ready ({ready})", partial(http_ok, ready), START_TIMEOUT_S, everyone)
    url, host = f"http://127.0.0.1:{plan.client.outbound}/", authority(MESH_SERVICE)
    wait_for("a 200 through the tapped mesh", partial(http_ok, url, host), START_TIMEOUT_S, everyone)
    wait_for("the tap listener", partial(port_open, "127.0.0.1", tap_port), START_TIMEOUT_S, everyone)
    arm = Arm("mesh-2hop-tapped", "python -m meshctl.proxy ×2 (mTLS), tap on the client side", url, host,
              [proxies[CLIENT_POD]])  # fmt: skip
    return TappedMesh(arm, proxies[CLIENT_POD], f"127.0.0.1:{tap_port}")
