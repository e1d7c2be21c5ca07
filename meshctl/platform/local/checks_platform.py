"""MC1xxx on the local platform: the state directory and mesh record (reachable), the Python and OS the
mesh needs (version), and whether `meshctl up` can start a mesh here (`--pre`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from meshctl.health.facts import listing, plural
from meshctl.health.registry import Category, Check, CheckContext, Failed, Mode, Outcome, Passed, Warned
from meshctl.platform.local.facts import LAYOUT, RECORD

MIN_PYTHON = (3, 11)
UP_HINT = "start the mesh with `meshctl up` (or point --home / MESHCTL_HOME at the state directory of a running one)"


# --- reachable --------------------------------------------------------------------------------------------


def state_directory(ctx: CheckContext) -> Outcome:
    home = ctx.get(LAYOUT).home
    if not home.exists():
        return Failed(f"{home} does not exist", UP_HINT)
    if not home.is_dir():
        return Failed(f"{home} is not a directory", "point --home / MESHCTL_HOME at a meshctl state directory")
    if not os.access(home, os.R_OK | os.X_OK):
        return Failed(
            f"{home} is not readable by this user", f"run as the user that ran `meshctl up`, or fix the mode of {home}"
        )
    return Passed(str(home))


def mesh_record(ctx: CheckContext) -> Outcome:
    record = ctx.get(RECORD)  # UnreachableError when there is none: its message and hint become the failure
    return Passed(f"started {record.started_at} on {record.subnet}")


def mesh_started(ctx: CheckContext) -> Outcome:
    record = ctx.get(RECORD)
    if record.state != "running":
        return Failed(
            f"the mesh record says {record.state!r}: `meshctl up` (pid {record.up_pid}) has not finished",
            "wait for `meshctl up` to finish (use `meshctl check --wait 2m`), or run `meshctl down && meshctl up`",
        )
    return Passed()


REACHABLE = Category(
    id="local-platform",
    name="the local mesh's state",
    checks=(
        Check(
            "MC1001",
            "the state directory exists and is readable",
            "start the mesh with `meshctl up`, or point --home / MESHCTL_HOME at its state directory",
            state_directory,
            timeout=2.0,
        ),
        Check(
            "MC1002",
            "a mesh is recorded in the state directory",
            "start the mesh with `meshctl up`",
            mesh_record,
            timeout=2.0,
            requires=("MC1001",),
        ),
        Check(
            "MC1003",
            "`meshctl up` has finished starting the mesh",
            "wait for `meshctl up` to finish: `meshctl check --wait 2m`",
            mesh_started,
            timeout=2.0,
            requires=("MC1002",),
        ),
    ),
)


# --- version ----------------------------------------------------------------------------------------------


def python_version(ctx: CheckContext) -> Outcome:
    found = sys.version_info[:3]
    text = ".".join(map(str, found))
    if found[:2] < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        return Failed(f"Python {text} is older than {wanted}", f"install meshctl with Python {wanted} or newer")
    return Passed(f"Python {text}")


def linux_proc(ctx: CheckContext) -> Outcome:
    if not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists():
        return Failed(f"{sys.platform} has no Linux /proc: the local mesh tracks its processes there")
    return Passed()


VERSION = Category(
    id="local-version",
    name="the Python and operating system the mesh runs on",
    checks=(
        Check(
            "MC1010",
            "Python is 3.11 or newer",
            "install meshctl with Python 3.11 or newer",
            python_version,
            timeout=1.0,
            retry=False,
        ),
        Check(
            "MC1011",
            "the operating system is Linux with /proc",
            "run the local mesh on Linux (or use --platform kubernetes)",
            linux_proc,
            timeout=1.0,
            retry=False,
        ),
    ),
    modes=frozenset({Mode.PRE, Mode.INSTALLED}),
)


# --- pre-install ------------------------------------------------------------------------------------------


def state_writable(ctx: CheckContext) -> Outcome:
    home = ctx.get(LAYOUT).home
    existing = next((p for p in (home, *home.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return Failed(f"{existing or home} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        return Failed(
            f"{existing} is not writable by this user",
            f"choose another state directory with --home, or make {existing} writable",
        )
    return Passed(str(home))


def no_mesh_running(ctx: CheckContext) -> Outcome:
    from meshctl.errors import ConfigError
    from meshctl.platform.local import state
    from meshctl.platform.local.processes import is_alive

    layout = ctx.get(LAYOUT)
    try:
        record = state.read_record(layout)
    except ConfigError as exc:
        return Warned(f"{exc.message}; `meshctl up` will replace it")
    if record is None:
        return Passed()
    alive = [p for p in record.processes() if is_alive(p.pid, p.start_ticks)]
    if alive:
        return Failed(
            f"a mesh started {record.started_at} runs in {layout.home} ({plural(len(alive), 'process', 'processes')})",
            "stop it with `meshctl down`, or use another --home",
        )
    return Passed("a stopped mesh's record will be replaced")


def subnet(ctx: CheckContext) -> str:
    from meshctl.platform.local.addresses import DEFAULT_SUBNET

    return ctx.options.subnet or DEFAULT_SUBNET


def ports_free(ctx: CheckContext) -> Outcome:
    from meshctl.platform.local.addresses import AddressPlan
    from meshctl.platform.local.probes import port_in_use
    from meshctl.platform.local.topology import DemoOptions, Topology

    plan = AddressPlan.parse(subnet(ctx))  # UsageError for a bad subnet becomes the failure
    listeners = Topology(plan, DemoOptions()).listen_addresses()
    taken = [f"{address} ({what})" for address, what in listeners if port_in_use(address)]
    if taken:
        return Failed(
            f"{plural(len(taken), 'port')} of subnet {plan.subnet} in use: {listing(taken, 3)}",
            "stop what listens there, or start the mesh on another subnet: `meshctl up --subnet 127.78.0.0/16`",
        )
    return Passed(f"{len(listeners)} listeners on {plan.subnet}")


def prometheus_installed(ctx: CheckContext) -> Outcome:
    from meshctl.platform.local.prometheus import find_prometheus

    return Passed(find_prometheus())  # MeshError (with its install hint) when absent


PRE = Category(
    id="pre-install",
    name="can `meshctl up` start a mesh here",
    checks=(
        Check(
            "MC1020",
            "the state directory can be written",
            "choose a writable state directory with --home or MESHCTL_HOME",
            state_writable,
            timeout=2.0,
            retry=False,
        ),
        Check(
            "MC1021",
            "no mesh is running in the state directory",
            "stop it with `meshctl down`, or use another --home",
            no_mesh_running,
            timeout=2.0,
            requires=("MC1020",),
        ),
        Check(
            "MC1022",
            "the mesh's ports are free",
            "stop what listens there, or pick another subnet: `meshctl up --subnet 127.78.0.0/16`",
            ports_free,
            timeout=3.0,
        ),
        Check(
            "MC1023",
            "Prometheus is installed",
            "install it: `apt-get install -y prometheus` (or set MESHCTL_PROMETHEUS to its binary)",
            prometheus_installed,
            timeout=2.0,
            retry=False,
        ),
    ),
    modes=frozenset({Mode.PRE}),
)
