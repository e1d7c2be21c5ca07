"""The pcap stream: records come out whole however the bytes are cut, several captures merge into one file
tshark reads, and a follower resumes after the last whole record of a file still being written."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from meshctl.debug.pcap import GlobalHeader, PcapError, PcapReader, PcapWriter, default_header
from meshctl.debug.sources import resume_offset


def record(seconds: int, payload: bytes) -> bytes:
    return struct.pack("<IIII", seconds, 500_000, len(payload), len(payload)) + payload


def frame(n: int) -> bytes:
    # Ethernet (zero MACs, as on lo) + IPv4 header + nothing: enough for tshark to count and show it.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20, n, 0, 64, 6, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2]))
    return b"\0" * 12 + b"\x08\x00" + ip


def test_records_come_out_whole_whatever_the_pieces() -> None:
    stream = default_header().raw + record(1, frame(1)) + record(2, frame(2)) + record(3, frame(3))
    reader = PcapReader()
    got = []
    for i in range(0, len(stream), 7):
        got += reader.feed(stream[i : i + 7])
    assert [r.time for r in got] == [1.5, 2.5, 3.5]
    assert reader.header is not None and reader.header.linktype == 1
    assert reader.offset == len(stream)


def test_not_a_pcap_stream_is_refused() -> None:
    with pytest.raises(PcapError, match="not a pcap stream"):
        PcapReader().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(PcapError, match="not a pcap capture"):
        PcapReader().feed(default_header().raw + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30))


def test_merged_captures_are_one_file_tshark_reads(tmp_path: Path) -> None:
    out = io.BytesIO()
    writer = PcapWriter(out)
    header = default_header()
    for n in range(1, 4):
        (rec,) = PcapReader().feed(header.raw + record(n, frame(n)))
        writer.write(header, rec)
    other = GlobalHeader.parse(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113))  # Linux cooked
    with pytest.raises(PcapError, match="different link types"):
        writer.write(other, PcapReader().feed(other.raw + record(9, frame(9)))[0])
    path = tmp_path / "merged.pcap"
    path.write_bytes(out.getvalue())
    tshark = shutil.which("tshark")
    assert tshark is not None, "tshark is installed by .ci/setup"
    done = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "ip.id"], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert [int(v, 0) for v in done.stdout.split()] == [1, 2, 3]


def test_a_follower_resumes_after_the_last_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "growing.pcap"
    whole = default_header().raw + record(1, frame(1)) + record(2, frame(2))
    path.write_bytes(whole + record(3, frame(3))[:10])  # the writer is mid-record
    assert resume_offset(path) == len(whole)
    path.write_bytes(default_header().raw[:10])
    assert resume_offset(path) == 0
