"""gRPC framing of the control plane's server, without sockets."""

from __future__ import annotations

import pytest

from meshctl.control.grpc_wire import (
    MAX_MESSAGE,
    BadRequest,
    encode_message,
    framed,
    request_message,
    status_block,
    too_large,
)
from meshctl.control.rpc import StatusCode


def test_grpc_message_is_percent_encoded() -> None:
    assert encode_message("token not recognised") == b"token not recognised"
    assert encode_message("100% é\n") == b"100%25 %C3%A9%0A"
    assert status_block(StatusCode.OK, "") == [(b"grpc-status", b"0")]
    assert status_block(StatusCode.UNAUTHENTICATED, "no") == [(b"grpc-status", b"16"), (b"grpc-message", b"no")]


def test_one_uncompressed_message_is_a_request() -> None:
    assert request_message(b"\0\0\0\0\3abc") == b"abc"
    assert request_message(framed(b"")) == b""
    with pytest.raises(BadRequest) as short:
        request_message(b"\0\0\0\0\4abc")
    assert short.value.code is StatusCode.INTERNAL
    with pytest.raises(BadRequest) as compressed:
        request_message(b"\1\0\0\0\3abc")
    assert compressed.value.code is StatusCode.UNIMPLEMENTED


def test_a_request_over_one_mib_is_refused_with_its_size() -> None:
    assert too_large(framed(b"x" * MAX_MESSAGE)) is None
    prefix = b"\0" + (MAX_MESSAGE + 1).to_bytes(4, "big")
    assert (
        too_large(prefix + b"x" * (MAX_MESSAGE + 1))
        == f"Received message larger than max ({MAX_MESSAGE + 1} vs. {MAX_MESSAGE})"
    )


def test_a_message_is_framed_once_for_every_stream() -> None:
    body = bytes(range(200))
    assert framed(body) == b"\0\0\0\0\xc8" + body
    assert framed(body) is framed(body)
