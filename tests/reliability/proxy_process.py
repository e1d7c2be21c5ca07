"""Two real proxies (outbound -> mTLS -> inbound -> an HTTP/1.1 app) in a child process of their own.

A test that may freeze a proxy (a regex that backtracks for hours) must not freeze the test process:
`python -m tests.reliability.proxy_process APP_PORT PROFILE_JSON` prints the outbound port, serves until
SIGTERM. `ProxyProcess` starts and stops it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

from tests.integration.test_proxy_grpc_support import Mesh


class ProxyProcess:
    def __init__(self, app_port: int, profile: dict[str, Any] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.proxy_process", str(app_port), json.dumps(profile)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError(f"the proxy process did not start: {line!r}")
        self.outbound_port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # frozen (the defect under test): SIGTERM is never handled
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def main() -> None:
    app_port, profile = int(sys.argv[1]), json.loads(sys.argv[2])
    mesh = Mesh(app_port, app_protocol="http", profile=profile)
    print(mesh.outbound_port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    mesh.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # before any thread starts
    main()
