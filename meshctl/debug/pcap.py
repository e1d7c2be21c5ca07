"""The classic pcap format as a stream: split what a capture writes into whole records, and write records
from several captures into one file that `tshark -r` reads.

A capture's bytes arrive in arbitrary pieces (a pipe, or a file another process is still writing); only
whole records are passed on, so a file we write is valid whenever it is closed, even after Ctrl-C.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# Magic numbers as they read in little-endian: microsecond and nanosecond timestamps, either byte order.
_MAGICS = {0xA1B2C3D4: ("<", 1_000_000), 0xD4C3B2A1: (">", 1_000_000),
           0xA1B23C4D: ("<", 1_000_000_000), 0x4D3CB2A1: (">", 1_000_000_000)}  # fmt: skip
MAX_RECORD = 16 * 1024 * 1024  # more than any snapshot length: a bigger record means the stream is corrupt


class PcapError(ValueError):
    pass


@dataclass(frozen=True)
class GlobalHeader:
    raw: bytes
    order: str  # "<" or ">"
    ticks: int  # timestamp fractions per second
    linktype: int

    @classmethod
    def parse(cls, raw: bytes) -> GlobalHeader:
        (magic,) = struct.unpack("<I", raw[:4])
        if magic not in _MAGICS:
            raise PcapError(f"not a pcap stream (magic {magic:#010x})")
        order, ticks = _MAGICS[magic]
        linktype = struct.unpack(order + "I", raw[20:24])[0] & 0x0FFFFFFF
        return cls(raw, order, ticks, linktype)


@dataclass(frozen=True)
class Record:
    """One packet as the capture wrote it (header and data), with its time for ordering."""

    raw: bytes
    time: float


class PcapReader:
    """Feed bytes in any pieces; get back the global header (once) and whole records."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.header: GlobalHeader | None = None
        self.offset = 0  # bytes consumed as whole records (and the header): where a follower may resume

    def feed(self, data: bytes) -> list[Record]:
        self._buffer += data
        if self.header is None:
            if len(self._buffer) < GLOBAL_HEADER_LEN:
                return []
            self.header = GlobalHeader.parse(bytes(self._buffer[:GLOBAL_HEADER_LEN]))
            del self._buffer[:GLOBAL_HEADER_LEN]
            self.offset = GLOBAL_HEADER_LEN
        records: list[Record] = []
        header = self.header
        while len(self._buffer) >= RECORD_HEADER_LEN:
            seconds, fraction, included, _ = struct.unpack(header.order + "IIII", self._buffer[:RECORD_HEADER_LEN])
            if included > MAX_RECORD:
                raise PcapError(f"a record of {included} bytes: the stream is not a pcap capture")
            size = RECORD_HEADER_LEN + included
            if len(self._buffer) < size:
                break
            records.append(Record(bytes(self._buffer[:size]), seconds + fraction / header.ticks))
            del self._buffer[:size]
            self.offset += size
        return records


class PcapWriter:
    """Records of one or more captures into one stream: the first header seen is written, and records of a
    capture with another link type or timestamp format are refused (they could not share the file)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.header: GlobalHeader | None = None
        self.records = 0

    def write(self, header: GlobalHeader, record: Record) -> None:
        if self.header is None:
            self.header = header
            self.out.write(header.raw)
        elif (header.linktype, header.order, header.ticks) != (self.header.linktype, self.header.order,
                                                               self.header.ticks):  # fmt: skip
            raise PcapError("captures of different link types cannot share one pcap file")
        self.out.write(record.raw)
        self.records += 1

    def flush(self) -> None:
        self.out.flush()


def default_header(linktype: int = 1, snaplen: int = 262_144) -> GlobalHeader:
    """The header of a capture that saw nothing (Ethernet, as Linux's `lo` is): an empty file still reads."""
    raw = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)
    return GlobalHeader.parse(raw)
