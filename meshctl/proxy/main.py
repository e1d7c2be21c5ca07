"""`python -m meshctl.proxy --config FILE` (or `--config-env NAME` on Kubernetes): the proxy process.

Order of start: config (exit 2 on a bad one) → admin endpoint → control client (certificate and
discovery, on its own thread; callbacks hop onto the loop) → listeners, once the first certificate
is installed. SIGTERM/SIGINT: stop accepting, let in-flight requests finish (≤ 10 s), exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from typing import Any

from meshctl.aio import spawn
from meshctl.errors import ConfigError, MeshError
from meshctl.proxy.allocator import release_free_memory, tune_allocator
from meshctl.proxy.config import Addr, ProxyConfig, load_proxy_config, load_proxy_config_env
from meshctl.proxy.logs import get_log_level, set_log_level, setup_logging
from meshctl.proxy.runtime import ProxyRuntime, build_runtime

log = logging.getLogger("meshctl.proxy")

DRAIN_S = 10.0


class Proxy:
    def __init__(self, config: ProxyConfig, runtime: ProxyRuntime) -> None:
        self.config = config
        self.runtime = runtime
        self.loop = asyncio.get_running_loop()
        self.servers: list[asyncio.AbstractServer] = []
        self.listeners: list[Any] = []  # server.Listener
        self.started = False
        self.listening = False  # every listener bound: only then may discovery send traffic here
        self.stopping = False

    async def start_listeners(self) -> None:
        """Bind every configured listener (needs the first certificate for the inbound one)."""
        from meshctl.proxy.detect import Detect
        from meshctl.proxy.h1.downstream import Listener
        from meshctl.proxy.tls import rotating_server_context

        runtime = self.runtime

        def current_server_context() -> Any:
            assert runtime.tls is not None
            return runtime.tls.server

        plan: list[tuple[str, Addr, bool]] = []
        if self.config.inbound is not None:
            plan.append(("inbound", self.config.inbound.listen, True))
        if self.config.outbound is not None:
            plan.append(("outbound", self.config.outbound.listen, False))
        if self.config.ingress is not None:
            plan.append(("ingress", self.config.ingress.listen, False))
        for direction, addr, tls in plan:
            listener = Listener(runtime, direction)
            self.listeners.append(listener)

            def factory(listener: Listener = listener, tls: bool = tls) -> asyncio.Protocol:
                return Detect(listener, tls)

            context = rotating_server_context(current_server_context) if tls else None
            try:
                server = await self.loop.create_server(
                    factory, addr.host, addr.port, ssl=context, reuse_address=True, backlog=1024,
                    ssl_handshake_timeout=10.0 if tls else None,
                )  # fmt: skip
            except OSError as exc:
                raise MeshError(
                    f"the {direction} listener cannot bind {addr}: {exc.strerror or exc}",
                    hint="stop the process holding the address, or change the proxy config",
                ) from None
            self.servers.append(server)
            log.info("%s listener on %s", direction, addr)
        self.listening = True
        # Start-up is over: what it made (modules, config, contexts: ~35k objects) lives as long as the
        # process. Frozen, it is never scanned again, so a collection during traffic stays short.
        gc.collect()
        gc.freeze()
        release_free_memory()

    async def stop(self) -> None:
        """Stop accepting, drain in-flight requests for up to DRAIN_S, then close what is left."""
        for server in self.servers:
            server.close()
        for listener in self.listeners:
            listener.drain()
        h2_drain: asyncio.Future[Any] | None = None
        try:
            from meshctl.proxy.h2.server import drain_h2

            h2_drain = spawn(drain_h2(self.runtime, DRAIN_S), name="drain h2")
        except ImportError:
            pass
        deadline = self.loop.time() + DRAIN_S
        while any(listener.live for listener in self.listeners) and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for listener in self.listeners:
            listener.abort_all()
        if h2_drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(h2_drain, DRAIN_S + 2.0)


async def serve(config: ProxyConfig) -> int:
    from meshctl.metrics.admin import start_admin_server, stop_admin_server
    from meshctl.metrics.adminapp import AdminApp
    from meshctl.proxy.control_client import ControlClient

    loop = asyncio.get_running_loop()
    runtime = build_runtime(config, clock=loop.time)
    proxy = Proxy(config, runtime)
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def on_first_certificate(_: object) -> None:
        if proxy.started:
            return
        proxy.started = True

        async def start() -> None:
            try:
                await proxy.start_listeners()
            except MeshError as exc:
                failure.append(exc)
                stop.set()

        spawn(start(), name="start listeners")

    runtime.when_certificate(on_first_certificate)
    app = AdminApp(
        metrics=runtime.metrics,
        # discovery publishes this endpoint only while the listeners accept and no drain has begun
        ready=lambda: runtime.ready and proxy.listening and not proxy.stopping,
        get_log_level=get_log_level,
        set_log_level=set_log_level,
        config_dump=runtime.config_dump,
    )
    admin = await start_admin_server(config.admin.listen.host, config.admin.listen.port, app)
    log.info("admin on %s", config.admin.listen)
    tap = await start_tap(config, runtime) if config.tap is not None else None

    client = ControlClient(config, on_certificate=runtime.on_certificate, on_snapshot=runtime.on_snapshot)
    client.start()

    def on_signal() -> None:
        proxy.stopping = True  # /ready answers 503 from now on, while in-flight requests drain
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    log.info("shutting down: draining in-flight requests")
    await proxy.stop()
    await client.stop()
    if tap is not None:
        await tap.stop()
    await stop_admin_server(admin)
    if failure:
        raise failure[0]
    log.info("stopped")
    return 0


async def start_tap(config: ProxyConfig, runtime: ProxyRuntime) -> Any:
    """The tap server on its own port; the request pipeline sees it through `runtime.tap`."""
    from meshctl.proxy.observe.tap import TapHub
    from meshctl.proxy.observe.tap_server import TapServer

    assert config.tap is not None
    hub = TapHub(pod=config.pod, deployment=config.deployment, namespace=config.namespace, identity=config.identity)
    server = TapServer(hub)
    await server.start(config.tap.listen.host, config.tap.listen.port)
    runtime.tap = hub
    log.info("tap on %s", config.tap.listen)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl.proxy", description="the meshctl sidecar proxy")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="ProxyConfig JSON file")
    source.add_argument("--config-env", metavar="NAME", help="environment variable holding the ProxyConfig JSON")
    args = parser.parse_args(argv)
    setup_logging("info")
    try:
        config = load_proxy_config(args.config) if args.config else load_proxy_config_env(args.config_env)
    except ConfigError as exc:
        print(f"meshctl proxy: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    setup_logging(config.log_level)
    tune_allocator()
    import uvloop

    try:
        return uvloop.run(serve(config))
    except MeshError as exc:
        log.error("%s%s", exc.message, f" (hint: {exc.hint})" if exc.hint else "")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 0
