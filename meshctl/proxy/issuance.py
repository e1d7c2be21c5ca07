"""The proxy's side of identity issuance without `cryptography`: a key and CSR from a child process, and the
issued certificate checked the way peers will check it — by a TLS handshake, in memory.

`request_csr` runs `python -m meshctl.pki.request` (see there why). `verify_issued` loads the issued chain
and the key into a server context (which fails when the key is not the certificate's) and completes a
TLS 1.3 handshake through memory BIOs with a client that trusts only the mesh's anchors and expects
the proxy's identity as the server name: exactly what a peer proxy verifies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import sys
from datetime import UTC, datetime

REQUEST_TIMEOUT_S = 20.0


class IssuanceError(ValueError):
    """A key, CSR or issued certificate is unusable; the message says why."""


async def request_csr(identity: str) -> tuple[bytes, bytes]:
    """(key PEM, CSR DER) for `identity`, made by a child process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshctl.pki.request", identity,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), REQUEST_TIMEOUT_S)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise IssuanceError(f"making a key and CSR failed: {err.decode(errors='replace').strip()[-300:]}")
    try:
        made = json.loads(out)
        return made["key_pem"].encode("ascii"), base64.b64decode(made["csr_der"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IssuanceError(f"unreadable key and CSR: {exc}") from None


def load_chain(ctx: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """Load a certificate chain and its key (the ssl module reads keys from files only: an anonymous
    in-memory file where there is one, else a private 0600 file; either lives for one call)."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):  # Linux: no file, no tempfile import
        fd = os.memfd_create("meshctl-leaf", os.MFD_CLOEXEC)
        with os.fdopen(fd, "wb+") as f:
            f.write(chain_pem.rstrip(b"\n") + b"\n" + key_pem)
            f.flush()
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        return
    import tempfile  # the resident proxy keeps tempfile (and shutil, random, bz2, lzma) out where it can

    fd, path = tempfile.mkstemp(prefix="meshctl-leaf-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(chain_pem.rstrip(b"\n") + b"\n" + key_pem)
        ctx.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def verify_issued(chain_pem: bytes, key_pem: bytes, anchors_pem: bytes, identity: str) -> datetime:
    """The leaf's expiry, once the chain proves `identity` to a peer trusting `anchors_pem`; IssuanceError if not."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        load_chain(server, chain_pem, key_pem)
        client.load_verify_locations(cadata=anchors_pem.decode("ascii"))
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        raise IssuanceError(f"the issued certificate does not fit this proxy's key: {exc}") from None
    client.minimum_version = server.minimum_version = ssl.TLSVersion.TLSv1_3
    up, down = ssl.MemoryBIO(), ssl.MemoryBIO()  # client → server, server → client
    peer = client.wrap_bio(down, up, server_hostname=identity)
    us = server.wrap_bio(up, down, server_side=True)
    try:
        for _ in range(8):  # TLS 1.3 completes in two flights each way
            done = 0
            for side in (peer, us):
                try:
                    side.do_handshake()
                    done += 1
                except ssl.SSLWantReadError:
                    pass
            if done == 2:
                break
        else:
            raise IssuanceError("the handshake with the issued certificate did not complete")
    except ssl.SSLCertVerificationError as exc:
        raise IssuanceError(f"the issued certificate does not prove {identity}: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise IssuanceError(f"the issued certificate failed a handshake: {exc}") from None
    cert = peer.getpeercert()
    if not cert or "notAfter" not in cert:
        raise IssuanceError("the issued certificate has no expiry")
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)


def der_to_pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode("ascii")
