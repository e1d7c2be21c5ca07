"""The BPF filter of an instance's plaintext legs, compiled by tcpdump itself (`-d` prints the program
without capturing): the app and outbound legs, never the mTLS port between proxies."""

from __future__ import annotations

import shutil
import subprocess

from meshctl.platform.local.debug_capture import bpf, legs_of
from meshctl.platform.local.state import ComponentRecord


def component(kind: str, addresses: dict[str, str], protocol: str | None = "http") -> ComponentRecord:
    return ComponentRecord(name="books-0", kind=kind, namespace="booksapp", deployment="books", pod="books-0",
                           addresses=addresses, protocol=protocol)  # fmt: skip


def test_a_workloads_legs_are_its_app_and_outbound_addresses() -> None:
    addresses = {"app": "127.77.3.1:7002", "inbound": "127.77.3.1:4143", "outbound": "127.77.3.1:4140",
                 "admin": "127.77.3.1:4191", "tap": "127.77.3.1:4190"}  # fmt: skip
    legs = legs_of(component("workload", addresses, "grpc"))
    assert [(leg.port, leg.direction, leg.protocol) for leg in legs] == [
        (7002, "inbound", "grpc"),
        (4140, "outbound", "http"),
    ]
    text = bpf(legs)
    assert "4143" not in text and "4191" not in text
    tcpdump = shutil.which("tcpdump")
    assert tcpdump is not None, "tcpdump is installed by .ci/setup"
    compiled = subprocess.run([tcpdump, "-d", text], capture_output=True, text=True, timeout=30, check=False)
    assert compiled.returncode == 0, compiled.stderr
    assert "0x7f4d0301" in compiled.stdout.lower() or "2135753473" in compiled.stdout  # 127.77.3.1


def test_the_ingress_leg_is_its_listener() -> None:
    legs = legs_of(component("ingress", {"ingress": "127.77.0.4:8080", "admin": "127.77.0.4:4191"}, None))
    assert [(leg.host, leg.port, leg.direction) for leg in legs] == [("127.77.0.4", 8080, "inbound")]
