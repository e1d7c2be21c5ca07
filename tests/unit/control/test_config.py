"""ControlConfig (control.json): the documented shape parses; mistakes name their field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshctl.control.config import (
    Address,
    hash_token,
    load_control_config,
    parse_address,
    parse_control_config,
)
from meshctl.errors import ConfigError

BOOKS = "books.booksapp.serviceaccount.identity.meshctl.cluster.local"


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "listen": "127.77.0.2:8086",
        "admin": "127.77.0.2:9996",
        "identity_dir": "identity",
        "config_dir": "config",
        "tokens": {"books-0": {"token_sha256": hash_token("t"), "identity": BOOKS}},
        "services": [
            {
                "name": "books",
                "namespace": "booksapp",
                "port": 7000,
                "protocol": "http",
                "endpoints": [
                    {
                        "address": "127.77.2.1",
                        "port": 4143,
                        "pod": "books-0",
                        "identity": BOOKS,
                        "labels": {"deployment": "books"},
                    }
                ],
            }
        ],
        "cert_lifetime_hours": 24,
        "mesh_json": "mesh.json",
    }
    document.update(changes)
    return document


def test_the_documented_shape_parses_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    path.write_text(json.dumps(_document()))
    config = load_control_config(path)
    assert config.listen == Address("127.77.0.2", 8086)
    assert config.identity_dir == tmp_path / "identity"
    assert config.mesh_json == tmp_path / "mesh.json"
    assert config.tokens["books-0"].identity == BOOKS
    endpoint = config.services[0].endpoints[0]
    assert (endpoint.address, endpoint.port, endpoint.ready, dict(endpoint.labels)) == (
        "127.77.2.1",
        4143,
        True,
        {"deployment": "books"},
    )


ENDPOINT = {"address": "127.77.2.1", "pod": "books-0", "identity": BOOKS}
BAD = [
    ({"listen": "8086"}, 'listen: expected "host:port" such as "127.77.0.2:8086", got "8086"'),
    (
        {"listen": "127.0.0.1:70000"},
        'listen: expected "host:port" such as "127.77.0.2:8086", got "127.0.0.1:70000"',
    ),
    (
        {"tokens": {"b": {"token_sha256": "abc", "identity": BOOKS}}},
        'tokens.b.token_sha256: expected 64 lowercase hex digits, got "abc"',
    ),
    ({"cert_lifetime_hours": 0}, "cert_lifetime_hours: expected a number >= 0.01, got 0"),
    (
        {"services": [{"name": "Books", "namespace": "booksapp", "port": 7000}]},
        'services[0].name: expected a DNS label (a-z, 0-9, -), got "Books"',
    ),
    (
        {"services": [{"name": "books", "namespace": "booksapp", "port": 0}]},
        "services[0].port: expected an integer from 1 to 65535, got 0",
    ),
    (
        {"services": [{"name": "books", "namespace": "booksapp", "port": 7000, "protocol": "tcp"}]},
        'services[0].protocol: expected "http" or "grpc", got "tcp"',
    ),
    (
        {"services": [{"name": "books", "namespace": "booksapp", "port": 7000, "endpoints": [ENDPOINT]}]},
        "services[0].endpoints[0].port: expected an integer from 1 to 65535, got null",
    ),
    ({"listn": "x"}, "listn: unknown field (did you mean 'listen'?)"),
    ({"webhook": {"listen": "0.0.0.0:8443", "cert": "tls.crt"}}, "webhook.key: expected a path, got null"),
    ({"webhook": {"listen": "8443", "cert": "c", "key": "k"}}, 'webhook.listen: expected "host:port" such as '
                                                               '"127.77.0.2:8086", got "8443"'),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_mistakes_name_their_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_control_config(_document(**changes), source="control.json", base=Path("/x"))
    assert caught.value.message == f"control.json: {message}"


def test_the_injector_webhook_is_optional_and_its_files_relative_to_the_config(tmp_path: Path) -> None:
    assert parse_control_config(_document()).webhook is None
    hook = {"listen": "0.0.0.0:8443", "cert": "webhook/tls.crt", "key": "webhook/tls.key"}
    config = parse_control_config(_document(webhook=hook), base=tmp_path)
    assert config.webhook is not None
    assert (config.webhook.listen, config.webhook.cert) == (Address("0.0.0.0", 8443), tmp_path / "webhook/tls.crt")


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    path.write_text('{"listen":\n')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 2"):
        load_control_config(path)


def test_addresses() -> None:
    assert parse_address("[::1]:8086") == Address("::1", 8086)
    assert str(Address("::1", 8086)) == "[::1]:8086"
    with pytest.raises(ValueError):
        parse_address("host:")


def test_token_hash_ignores_surrounding_whitespace() -> None:
    assert hash_token("abc\n") == hash_token(b"abc") == hash_token(" abc ")
