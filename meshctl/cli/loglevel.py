"""`meshctl log-level TARGET [LEVEL] [--for 5m] [--reset]`: read or change the log level of every proxy of a
target, through each proxy's admin endpoint (reached with `Platform.proxy_port`).

A level is checked here with the proxies' own parser before any proxy is asked, so a bad directive changes
nothing anywhere. `--for` is enforced by each proxy (`PUT /proxy-log-level?for=SECONDS`): the old level
comes back when the time is up even if this command was killed.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

import typer

from meshctl.cli.context import CliContext, OutputFormat
from meshctl.cli.examples import examples
from meshctl.errors import MeshError, UsageError

ADMIN_PORT = 4191  # every proxy's admin endpoint
TIMEOUT_S = 5.0

LOG_LEVEL_EXAMPLES = examples(
    ("Each books proxy's level", "meshctl log-level deploy/books -n booksapp"),
    ("Debug logs of the proxy's HTTP/1.1 path for five minutes, then back",
     "meshctl log-level deploy/books -n booksapp warn,meshctl.proxy.h1=debug --for 5m"),
    ("Back to the level each proxy was started with", "meshctl log-level deploy/books -n booksapp --reset"),
)  # fmt: skip


@dataclass
class Outcome:
    instance: str
    before: str | None = None
    after: str | None = None
    revert_s: float | None = None
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.instance}: {self.error}"
        if self.after is None or self.after == self.before:
            return f"{self.instance}: {self.before}" + (" (unchanged)" if self.after is not None else "")
        later = f" for {self.revert_s:g}s, then {self.before} again" if self.revert_s else ""
        return f"{self.instance}: {self.before} → {self.after}{later}"

    def document(self) -> dict[str, object]:
        return {"instance": self.instance, "before": self.before, "after": self.after,
                "revert_after_s": self.revert_s, "error": self.error}  # fmt: skip


def _call(address: str, method: str, target: str, body: bytes | None = None) -> tuple[int, str]:
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
    try:
        connection.request(method, target, body=body, headers={"content-type": "text/plain"} if body else {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()


def _configured_level(address: str) -> str:
    status, text = _call(address, "GET", "/config.json")
    if status != 200:
        raise OSError(f"/config.json answered {status}")
    return str(json.loads(text).get("config", {}).get("log_level") or "info")


def _apply(address: str, outcome: Outcome, level: str | None, reset: bool, revert_s: float | None) -> None:
    status, outcome.before = _call(address, "GET", "/proxy-log-level")
    if status != 200:
        raise OSError(f"GET /proxy-log-level answered {status}: {outcome.before}")
    wanted = _configured_level(address) if reset else level
    if wanted is None:
        return
    target = "/proxy-log-level" + (f"?for={revert_s:g}" if revert_s else "")
    status, text = _call(address, "PUT", target, wanted.encode())
    if status != 204:
        raise OSError(f"the proxy refused the change ({status}): {text}")
    status, outcome.after = _call(address, "GET", "/proxy-log-level")
    outcome.revert_s = revert_s


def register(app: typer.Typer) -> None:
    @app.command("log-level", epilog=LOG_LEVEL_EXAMPLES)
    def log_level_command(
        ctx: typer.Context,
        target: str = typer.Argument(..., help="deploy/NAME, pod/NAME or ns/NAME: the proxies to read or change."),
        level: str | None = typer.Argument(None, help="A level such as debug, or warn,meshctl.proxy.h1=debug."),
        for_: str | None = typer.Option(None, "--for", metavar="DURATION", help="Change it for this long only (5m)."),
        reset: bool = typer.Option(False, "--reset", help="Back to the level each proxy was started with."),
    ) -> None:
        """Show or change the log level of every proxy of a target (exit 1 when one could not be changed)."""
        from meshctl.cli.tapsession import parse_seconds
        from meshctl.logs import parse_level_spec
        from meshctl.targets import parse_target

        cli: CliContext = ctx.obj
        if reset and level is not None:
            raise UsageError("give a LEVEL or --reset, not both", hint="drop one of them")
        if for_ is not None and level is None:
            raise UsageError("--for needs a LEVEL to set for that long",
                             hint="e.g. `meshctl log-level deploy/books debug --for 5m`")
        if level is not None:
            try:
                parse_level_spec(level)  # refused here, before any proxy is asked
            except ValueError as exc:
                hint = "e.g. debug, or warn,meshctl.proxy.h1=debug"
                raise UsageError(f"log level {level!r}: {exc}", hint=hint) from None
        revert_s = parse_seconds(for_, "--for")
        platform = cli.platform
        outcomes: list[Outcome] = []
        for proxy in platform.select_proxies(parse_target(target, cli.namespace or "default")):
            outcome = Outcome(proxy.pod)
            outcomes.append(outcome)
            try:
                with platform.proxy_port(proxy, ADMIN_PORT) as address:
                    _apply(str(address), outcome, level, reset, revert_s)
            except (OSError, MeshError, ValueError) as exc:
                outcome.error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if cli.output in (OutputFormat.JSON, OutputFormat.YAML):
            from meshctl.cli.watch import document_text

            cli.stdout.write(document_text({"proxies": [o.document() for o in outcomes]}, cli.output))
        else:
            cli.stdout.write("".join(o.line() + "\n" for o in outcomes))
        failed = [o.instance for o in outcomes if o.error is not None]
        if failed:
            raise MeshError(
                f"{len(failed)} of {len(outcomes)} proxies could not be reached or changed: {', '.join(failed)}",
                hint="`meshctl check --proxy` says what is wrong with them",
            )
