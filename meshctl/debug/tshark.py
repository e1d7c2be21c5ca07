"""Decoding captured packets into HTTP requests and responses with tshark.

One tshark reads a pcap stream on its stdin (`-i -`: live, a line per matching packet as it comes) and
prints chosen fields, tab-separated. HTTP/1 on the mesh's ports is not where tshark looks for it, so each
leg's port is declared (`-d tcp.port==P,http`); gRPC legs as HTTP/2.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from meshctl.errors import MeshError

INSTALL_HINT = "install them: `apt-get install -y tshark tcpdump` (Debian/Ubuntu; DEBIAN_FRONTEND=noninteractive)"
DEFAULT_FILTER = "http"

FIELDS = (
    "frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.stream",
    "http.request.method", "http.request.uri", "http.response.code", "http.request_in",
    "http2.streamid", "http2.headers.method", "http2.headers.path", "http2.headers.status",
)  # fmt: skip
# Every packet that starts an HTTP/1 message or carries HTTP/2 headers; --filter narrows it further.
_MESSAGES = "(http.request or http.response or http2.headers.method or http2.headers.status)"


def find_tool(name: str) -> str:
    """The path of tshark or tcpdump; a one-line error naming the package otherwise."""
    # tcpdump lives in sbin on some systems, which is not on every user's PATH.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise MeshError(f"{name} is not installed: `meshctl debug` captures with tcpdump and decodes with tshark",
                        hint=INSTALL_HINT)  # fmt: skip
    return path


def display_filter(user: str | None) -> str:
    if user is None or user.strip() in ("", DEFAULT_FILTER):
        return _MESSAGES
    return f"{_MESSAGES} and ({user})"


def decoder_argv(tshark: str, http_ports: list[int], http2_ports: list[int], user_filter: str | None) -> list[str]:
    argv = [tshark, "-i", "-", "-l", "-n", "-Q", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"]
    for port in sorted(set(http_ports)):
        argv += ["-d", f"tcp.port=={port},http"]
    for port in sorted(set(http2_ports)):
        argv += ["-d", f"tcp.port=={port},http2"]
    for field in FIELDS:
        argv += ["-e", field]
    return [*argv, "-Y", display_filter(user_filter)]


def check_filter_argv(tshark: str, user_filter: str, empty_pcap: str) -> list[str]:
    """tshark reading an empty capture with the filter: refuses a filter it cannot compile, exit 0 otherwise."""
    return [tshark, "-n", "-Q", "-r", empty_pcap, "-Y", display_filter(user_filter)]


@dataclass(frozen=True)
class Packet:
    """One decoded line: an HTTP/1 message, or an HTTP/2 packet's headers (maybe several streams)."""

    frame: int
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    stream: int
    method: str
    uri: str
    status: str
    request_in: int | None
    h2_streams: tuple[str, ...]
    h2_methods: tuple[str, ...]
    h2_paths: tuple[str, ...]
    h2_statuses: tuple[str, ...]


def _values(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)


def parse_line(line: str) -> Packet | None:
    """A line of the decoder's output; None for what is not one (a partial or foreign line)."""
    cells = line.rstrip("\n").split("\t")
    if len(cells) != len(FIELDS):
        return None
    try:
        return Packet(
            frame=int(cells[0]),
            time=float(cells[1]),
            src=(cells[2], int(cells[3])),
            dst=(cells[4], int(cells[5])),
            stream=int(cells[6]),
            method=cells[7].split(",")[0],
            uri=cells[8].split(",")[0],
            status=cells[9].split(",")[0],
            request_in=int(cells[10].split(",")[0]) if cells[10] else None,
            h2_streams=_values(cells[11]),
            h2_methods=_values(cells[12]),
            h2_paths=_values(cells[13]),
            h2_statuses=_values(cells[14]),
        )
    except ValueError:
        return None
