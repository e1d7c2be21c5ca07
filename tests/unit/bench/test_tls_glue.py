"""bench.tls_glue over a real TLS 1.3 connection with the mesh's certificates: the counts it reports
see ssl.SSLObject's wrapper frames with the stdlib class and none with the proxies' class."""

from __future__ import annotations

from pathlib import Path

import uvloop

from bench.tls_glue import KINDS, exchange, write_material


def test_counts_per_kind(tmp_path: Path) -> None:
    material = write_material(tmp_path)
    seen = {}
    for kind in KINDS:
        counted, object_class = uvloop.run(exchange(material, kind, 5, 40, count=True))
        seen[kind] = (object_class, counted.calls)
    stdlib_class, stdlib = seen["stdlib"]
    assert stdlib_class == "SSLObject"
    for method in ("read", "write", "pending"):  # one per record each way at each end
        assert stdlib[f"ssl.py:SSLObject.{method}"] >= 80
    for kind in ("direct", "buffered"):
        object_class, calls = seen[kind]
        assert object_class == "DirectSSLObject"
        assert not [name for name in calls if name.startswith("ssl.py:")]
    assert seen["direct"][1]["tls_glue.py:Client.data_received"] == 40
    assert seen["buffered"][1]["tls_glue.py:BufferedClient.buffer_updated"] == 40
