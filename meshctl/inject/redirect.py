"""The init container's traffic redirection: iptables rules (nat table) rendered as a shell script.

Inbound: TCP to the app's port goes to the proxy's inbound listener. Outbound: TCP the app sends out goes
to the proxy's outbound listener, except the proxy's own connections (its user) and loopback traffic
(the proxy forwarding to the app), which would otherwise loop.
"""

from __future__ import annotations

from meshctl.platform.kubernetes import conventions as k8s


def redirect_rules(app_port: int | None) -> list[list[str]]:
    """The iptables invocations, in order; without an app port nothing inbound is redirected."""
    nat = ["iptables", "-w", "-t", "nat"]
    rules: list[list[str]] = []
    if app_port is not None:
        rules += [
            [*nat, "-N", k8s.INBOUND_CHAIN],
            [*nat, "-A", k8s.INBOUND_CHAIN, "-p", "tcp", "--dport", str(app_port),
             "-j", "REDIRECT", "--to-ports", str(k8s.PROXY_INBOUND_PORT)],
            [*nat, "-A", "PREROUTING", "-p", "tcp", "-j", k8s.INBOUND_CHAIN],
        ]  # fmt: skip
    rules += [
        [*nat, "-N", k8s.OUTBOUND_CHAIN],
        [*nat, "-A", k8s.OUTBOUND_CHAIN, "-m", "owner", "--uid-owner", str(k8s.PROXY_UID), "-j", "RETURN"],
        [*nat, "-A", k8s.OUTBOUND_CHAIN, "-o", "lo", "-j", "RETURN"],
        [*nat, "-A", k8s.OUTBOUND_CHAIN, "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(k8s.PROXY_OUTBOUND_PORT)],
        [*nat, "-A", "OUTPUT", "-p", "tcp", "-j", k8s.OUTBOUND_CHAIN],
    ]
    return rules


def redirect_script(app_port: int | None) -> str:
    """One `sh -ec` script: the first failing rule stops the pod from starting (no unmeshed traffic)."""
    return "\n".join(" ".join(rule) for rule in redirect_rules(app_port)) + "\n"
