"""Machine instructions of one whole Python process under `valgrind --tool=callgrind`.

The hot-path tools (h1_hotpath, h2_hotpath, tls_glue) run their measuring child twice at two lengths and
take the difference, so start-up cancels; this runs one such child and returns what callgrind collected.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(module: str, args: list[str], *, timeout_s: float, out_file: str = "/dev/null") -> int:
    """`python -m module *args` under callgrind (fixed hash seed, no bytecode writes): its instruction count."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", sys.executable, "-m", module, *args]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{module}: callgrind run failed: {done.stderr.strip()[-400:]}")
    return int(match[1])
