"""Identity.Certify's decisions, without sockets: token, identity, CSR -> response or a status code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from meshctl.api import mesh_pb2
from meshctl.control import ca
from meshctl.control.config import TokenEntry, hash_token
from meshctl.control.identity_service import CertifyRefused, certify, find_token
from meshctl.control.rpc import StatusCode
from meshctl.identity import workload_identity
from meshctl.pki import keys
from meshctl.pki.certinfo import dns_names, verify_leaf
from meshctl.pki.keys import CertAndKey

BOOKS = workload_identity("books", "booksapp")
AUTHORS = workload_identity("authors", "booksapp")
TOKENS = {
    "books-0": TokenEntry("books-0", hash_token("books-token"), BOOKS),
    "authors-0": TokenEntry("authors-0", hash_token("authors-token"), AUTHORS),
}
DAY = timedelta(hours=24)


@pytest.fixture(scope="module")
def anchor() -> CertAndKey:
    return ca.generate_trust_anchor()


@pytest.fixture(scope="module")
def issuer(anchor: CertAndKey) -> CertAndKey:
    return ca.generate_issuer(anchor)


def _request(
    identity: str = BOOKS, token: bytes = b"books-token", csr_for: str | None = None
) -> mesh_pb2.CertifyRequest:
    csr = keys.make_csr(csr_for or identity, keys.new_key())
    return mesh_pb2.CertifyRequest(identity=identity, token=token, csr_der=csr)


def _refusal(request: mesh_pb2.CertifyRequest, issuer: CertAndKey) -> CertifyRefused:
    with pytest.raises(CertifyRefused) as caught:
        certify(request, TOKENS, issuer, DAY)
    return caught.value


def test_good_token_gets_a_leaf_that_chains_to_the_anchor(anchor: CertAndKey, issuer: CertAndKey) -> None:
    response, pod = certify(_request(), TOKENS, issuer, DAY)
    assert pod == "books-0"
    leaf = x509.load_der_x509_certificate(response.leaf_der)
    chain = [leaf, *(x509.load_der_x509_certificate(d) for d in response.intermediates_der)]
    verify_leaf(chain, [anchor.cert], BOOKS)
    assert dns_names(leaf) == [BOOKS]
    assert response.valid_until_unix == int(leaf.not_valid_after_utc.timestamp())


def test_token_file_newline_does_not_matter(issuer: CertAndKey) -> None:
    _, pod = certify(_request(token=b"books-token\n"), TOKENS, issuer, DAY)
    assert pod == "books-0"


def test_unknown_token_is_unauthenticated(issuer: CertAndKey) -> None:
    refused = _refusal(_request(token=b"guess"), issuer)
    assert (refused.code, refused.message) == (StatusCode.UNAUTHENTICATED, "token not recognised")


def test_missing_token_is_unauthenticated(issuer: CertAndKey) -> None:
    refused = _refusal(_request(token=b""), issuer)
    assert refused.code is StatusCode.UNAUTHENTICATED
    assert refused.message == "no token: send the workload token with the request"


def test_token_of_another_identity_is_permission_denied(issuer: CertAndKey) -> None:
    refused = _refusal(_request(identity=AUTHORS, token=b"books-token"), issuer)
    assert refused.code is StatusCode.PERMISSION_DENIED
    assert refused.message == f"the token of pod books-0 is for identity {BOOKS}, not {AUTHORS}"


def test_csr_for_another_identity_is_invalid_argument(issuer: CertAndKey) -> None:
    refused = _refusal(_request(csr_for=AUTHORS), issuer)
    assert refused.code is StatusCode.INVALID_ARGUMENT
    assert refused.message == f"CSR asks for {AUTHORS}, but the token is for identity {BOOKS}"


def test_malformed_identity_is_invalid_argument(issuer: CertAndKey) -> None:
    refused = _refusal(_request(identity="books"), issuer)
    assert refused.code is StatusCode.INVALID_ARGUMENT
    assert refused.message.startswith("identity 'books' is not a workload identity")


def test_expired_issuer_is_failed_precondition(anchor: CertAndKey) -> None:
    expired = ca.generate_issuer(anchor, lifetime=timedelta(seconds=1), now=ca._now(None) - timedelta(hours=1))
    refused = _refusal(_request(), expired)
    assert refused.code is StatusCode.FAILED_PRECONDITION
    assert refused.message.startswith("issuer certificate expired at ")


def test_find_token_finds_every_entry_of_the_token_and_sees_a_new_mapping() -> None:
    twin = {**TOKENS, "books-1": TokenEntry("books-1", hash_token("books-token"), BOOKS)}
    assert [e.pod for e in find_token(b"books-token", twin)] == ["books-0", "books-1"]
    assert find_token(b"nope", twin) == []
    assert [e.pod for e in find_token(b"books-token", TOKENS)] == ["books-0"]
