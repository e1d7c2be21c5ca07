"""The proxy process carries one HTTP/2 codec: nothing it imports at start-up loads python-h2.

`python -m meshctl.proxy` imports most of its modules lazily (inside `serve`), so the probe imports the
entry point and then every module of the package, a superset of what a running proxy loads.
"""

from __future__ import annotations

import json
import subprocess
import sys

PYTHON_H2 = ("h2", "hpack", "hyperframe")

_PROBE = """
import importlib, json, pkgutil, sys
import meshctl.proxy.main  # what `python -m meshctl.proxy` runs (its __main__ only calls main())
for info in pkgutil.walk_packages(meshctl.proxy.__path__, "meshctl.proxy."):
    if not info.name.endswith(".__main__"):
        importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_proxy_loads_ngh2_and_none_of_python_h2() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    # The walk reached the HTTP/2 stack, the control client and the tap server, so the check means something.
    assert {"ngh2", "meshctl.proxy.h2.ends", "meshctl.proxy.grpc_client", "meshctl.proxy.observe.tap_server"} <= loaded
    assert sorted(m for m in loaded if m.split(".")[0] in PYTHON_H2) == []
