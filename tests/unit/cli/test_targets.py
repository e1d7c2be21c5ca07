from __future__ import annotations

import pytest

from meshctl.errors import ExitCode, UsageError
from meshctl.targets import Kind, Target, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy/webapp", Target(Kind.DEPLOYMENT, "webapp", "booksapp")),
        ("deployment/webapp", Target(Kind.DEPLOYMENT, "webapp", "booksapp")),
        ("po/webapp-1", Target(Kind.POD, "webapp-1", "booksapp")),
        ("ns/emojivoto", Target(Kind.NAMESPACE, "emojivoto", "emojivoto")),
        ("svc/books", Target(Kind.SERVICE, "books", "booksapp")),
        ("webapp", Target(Kind.DEPLOYMENT, "webapp", "booksapp")),
        ("pods", Target(Kind.POD, None, "booksapp")),
    ],
)
def test_parses_kubectl_style_targets(text: str, expected: Target) -> None:
    assert parse_target(text, "booksapp") == expected


@pytest.mark.parametrize("text", ["", "widget/x", "deploy/Web_App", "deploy/" + "a" * 64])
def test_rejects_bad_targets_with_a_hint(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_target(text, "default")
    assert caught.value.exit_code is ExitCode.USAGE
    assert caught.value.hint


def test_target_renders_short_form() -> None:
    assert str(Target(Kind.DEPLOYMENT, "webapp", "ns")) == "deploy/webapp"
