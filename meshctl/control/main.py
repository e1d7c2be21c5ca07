"""`python -m meshctl.control --config control.json`: run the control plane until SIGTERM (exit 0).

Logs go to stderr, one line per event; expected failures (bad config, address in use) are one line
and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from meshctl.control.allocator import one_arena
from meshctl.control.config import load_control_config
from meshctl.control.logs import configure_logging
from meshctl.errors import ExitCode, MeshError

log = logging.getLogger("meshctl.control")


async def serve(config_path: Path) -> None:
    from meshctl.control.server import ControlPlane  # the server's modules load only when serving

    config = load_control_config(config_path)
    configure_logging(config.log_level)
    plane = ControlPlane(config, config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await plane.start()
        await stop.wait()
        log.info("stopping on signal")
    finally:
        await plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl.control", description="Run the meshctl control plane.")
    parser.add_argument("--config", required=True, type=Path, help="control.json (ControlConfig)")
    args = parser.parse_args(argv)
    one_arena()  # before any thread exists
    configure_logging("info")
    try:
        asyncio.run(serve(args.config))
    except MeshError as exc:
        log.error("%s%s", exc.message, f" (hint: {exc.hint})" if exc.hint else "")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.OK)
    return int(ExitCode.OK)
