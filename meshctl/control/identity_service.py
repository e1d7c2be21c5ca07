"""Identity.Certify: a workload proves its identity with its token and gets a certificate for its CSR.

The token is never stored: control.json holds its SHA-256, looked up in an index of the
digests. A known token only certifies the identity it was issued for.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from cryptography.hazmat.primitives import serialization

from meshctl.api import mesh_pb2
from meshctl.control.ca import CsrError, IssuerError, sign_csr
from meshctl.control.config import TokenEntry
from meshctl.control.metrics import ControlMetrics
from meshctl.control.rpc import CallContext, StatusCode
from meshctl.identity import parse_identity
from meshctl.pki.keys import CertAndKey

log = logging.getLogger("meshctl.control.identity")

MAX_TOKEN_BYTES = 8 * 1024
CERTIFY = b"/meshctl.control.v1.Identity/Certify"


class CertifyRefused(Exception):
    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def find_token(token: bytes, tokens: Mapping[str, TokenEntry]) -> list[TokenEntry]:
    """The entries whose hash matches `token`, found through an index of the digests.

    A lookup by SHA-256 digest can only leak, through its timing, something about the digest of a guess,
    which says nothing about a token; comparing against every entry cost 0.45 ms per call at 1,000 pods.
    """
    digest = hashlib.sha256(token.strip()).hexdigest()
    return list(_token_index(tokens).get(digest, ()))


_index_of: tuple[Mapping[str, TokenEntry], int, dict[str, list[TokenEntry]]] | None = None


def _token_index(tokens: Mapping[str, TokenEntry]) -> dict[str, list[TokenEntry]]:
    """digest -> entries, rebuilt when control.json brings a new mapping (mappings are never mutated)."""
    global _index_of
    if _index_of is not None and _index_of[0] is tokens and _index_of[1] == len(tokens):
        return _index_of[2]
    index: dict[str, list[TokenEntry]] = {}
    for entry in tokens.values():
        index.setdefault(entry.token_sha256, []).append(entry)
    _index_of = (tokens, len(tokens), index)
    return index


def certify(
    request: mesh_pb2.CertifyRequest,
    tokens: Mapping[str, TokenEntry],
    issuer: CertAndKey,
    lifetime: timedelta,
) -> tuple[mesh_pb2.CertifyResponse, str]:
    """Check the request and sign it; returns the response and the pod the token belongs to."""
    identity = request.identity
    try:
        parse_identity(identity)
    except ValueError:
        raise CertifyRefused(
            StatusCode.INVALID_ARGUMENT,
            f"identity {identity!r} is not a workload identity <sa>.<ns>.serviceaccount.identity...",
        ) from None
    if not request.token:
        raise CertifyRefused(StatusCode.UNAUTHENTICATED, "no token: send the workload token with the request")
    if len(request.token) > MAX_TOKEN_BYTES:
        raise CertifyRefused(StatusCode.UNAUTHENTICATED, "token not recognised")
    matches = find_token(request.token, tokens)
    if not matches:
        raise CertifyRefused(StatusCode.UNAUTHENTICATED, "token not recognised")
    entry = next((m for m in matches if m.identity == identity), None)
    if entry is None:
        raise CertifyRefused(
            StatusCode.PERMISSION_DENIED,
            f"the token of pod {matches[0].pod} is for identity {matches[0].identity}, not {identity}",
        )
    try:
        leaf = sign_csr(request.csr_der, identity, issuer, lifetime=lifetime)
    except CsrError as exc:
        raise CertifyRefused(StatusCode.INVALID_ARGUMENT, str(exc)) from None
    except IssuerError as exc:
        raise CertifyRefused(StatusCode.FAILED_PRECONDITION, str(exc)) from None
    response = mesh_pb2.CertifyResponse(
        leaf_der=leaf.public_bytes(serialization.Encoding.DER),
        intermediates_der=[issuer.cert.public_bytes(serialization.Encoding.DER)],
        valid_until_unix=int(leaf.not_valid_after_utc.timestamp()),
    )
    return response, entry.pod


class IdentityService:
    def __init__(
        self,
        issuer: CertAndKey,
        tokens: Callable[[], Mapping[str, TokenEntry]],
        lifetime: Callable[[], timedelta],
        metrics: ControlMetrics,
    ) -> None:
        self._issuer = issuer
        self._tokens = tokens  # read per call: control.json may be reloaded
        self._lifetime = lifetime
        self._metrics = metrics

    async def Certify(  # noqa: N802 - the gRPC method name
        self, request: mesh_pb2.CertifyRequest, context: CallContext
    ) -> mesh_pb2.CertifyResponse:
        try:
            response, pod = certify(request, self._tokens(), self._issuer, self._lifetime())
        except CertifyRefused as refused:
            self._metrics.certify_refused[refused.code.name.lower()] += 1
            log.warning("certify refused for %r from %s: %s", request.identity, context.peer(), refused.message)
            await context.abort(refused.code, refused.message)
        self._metrics.certificates_issued += 1
        log.info("certified %s for pod %s until %d", request.identity, pod, response.valid_until_unix)
        return response
