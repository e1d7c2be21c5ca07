"""The tap filter language's syntax: text into an expression tree of normalised terms (tapping/filter.py
makes it a `Filter`). The grammar:

    expr := conj ("or" conj)*          conj := unary (["and"] unary)*
    unary := ("not" | "!") unary | "(" expr ")" | FIELD OP VALUE

A VALUE is a word or a "quoted string". Each term is checked and normalised as it is read (a target
resolved against the namespace, `5xx` made a range, `!=` and `<` made a negation), so a mistake is
reported with its column, and the tree holds only what the proxy's match and the store's judge need.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from meshctl.errors import UsageError
from meshctl.tapping.events import INBOUND, OUTBOUND
from meshctl.targets import Kind, parse_target

HINT = "terms look like method=GET, path^=/books, status=5xx, latency>=100ms, to=deploy/books; combine with and/or/not"

GRPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9, "ABORTED": 10,
    "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}  # fmt: skip
_FIELDS = {
    "direction": "direction", "dir": "direction", "from": "source", "src": "source", "to": "destination",
    "dst": "destination", "from-id": "source_identity", "to-id": "destination_identity", "method": "method",
    "authority": "authority", "path": "path", "route": "route", "status": "status", "grpc-status": "grpc_status",
    "latency": "latency",
}  # fmt: skip
_TEXT_OPS = {"=": "exact", "^=": "prefix", "~": "regex"}
_UNITS = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000}


# -- the expression tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One test; `field` is the proto field it becomes, `value` its normalised value."""

    field: str  # direction|source|destination|method|authority|path|route|status|grpc_status|min_latency_us
    value: object  # str | (kind, text) | (ns, name, identity) | (min, max) | int
    text: str  # as written, for messages


@dataclass(frozen=True)
class All:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr: TypeAlias = Term | All | AnyOf | Not


# -- parsing -------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, namespace: str) -> None:
        self.text, self.namespace, self.pos = text, namespace, 0

    def fail(self, message: str) -> UsageError:
        return UsageError(f"filter {self.text!r}, at column {self.pos + 1}: {message}", hint=HINT)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek_word(self) -> str:
        self.skip()
        m = re.compile(r"[A-Za-z-]+").match(self.text, self.pos)
        return m.group(0).lower() if m else ""

    def expr(self) -> Expr:
        items = [self.conj()]
        while self.peek_word() == "or":
            self.pos += 2
            items.append(self.conj())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def conj(self) -> Expr:
        items = [self.unary()]
        while True:
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] == ")" or self.peek_word() == "or":
                break
            if self.peek_word() == "and":
                self.pos += 3
            items.append(self.unary())
        return items[0] if len(items) == 1 else All(tuple(items))

    def unary(self) -> Expr:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("a term is missing")
        if self.text.startswith("!", self.pos) and not self.text.startswith("!=", self.pos):
            self.pos += 1
            return Not(self.unary())
        if self.peek_word() == "not" and re.compile(r"not\b").match(self.text.lower(), self.pos):
            self.pos += 3
            return Not(self.unary())
        if self.text[self.pos] == "(":
            self.pos += 1
            inner = self.expr()
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise self.fail("a ')' is missing")
            self.pos += 1
            return inner
        return self.term()

    def term(self) -> Expr:
        start = self.pos
        m = re.compile(r"([A-Za-z][A-Za-z-]*)\s*(!=|\^=|>=|<=|=|~|>|<)\s*").match(self.text, self.pos)
        if m is None:
            raise self.fail(f"expected FIELD OP VALUE, found {self.text[self.pos :].split()[0]!r}")
        name, op = m.group(1).lower(), m.group(2)
        if name not in _FIELDS:
            raise self.fail(f"unknown field {name!r} (fields: {', '.join(sorted(set(_FIELDS)))})")
        self.pos = m.end()
        value = self.value()
        return build_term(_FIELDS[name], op, value, self.text[start : self.pos].strip(), self.namespace, self.fail)

    def value(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            end = self.pos + 1
            out = []
            while end < len(self.text) and self.text[end] != '"':
                if self.text[end] == "\\" and end + 1 < len(self.text):
                    end += 1
                out.append(self.text[end])
                end += 1
            if end >= len(self.text):
                raise self.fail("a closing '\"' is missing")
            self.pos = end + 1
            return "".join(out)
        depth, end = 0, self.pos
        while end < len(self.text) and not self.text[end].isspace():
            char = self.text[end]
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            end += 1
        if end == self.pos:
            raise self.fail("a value is missing")
        value, self.pos = self.text[self.pos : end], end
        return value


def build_term(field: str, op: str, raw: str, text: str, namespace: str, fail: Callable[[str], UsageError]) -> Expr:
    """One FIELD OP VALUE as an expression (`!=` and `<` become a negated term)."""
    negate = op == "!="
    if field in ("authority", "path"):
        if op not in (*_TEXT_OPS, "!="):
            raise fail(f"{field} takes =, !=, ^= (prefix) or ~ (regex)")
        kind = _TEXT_OPS.get(op, "exact")
        if kind == "regex":
            try:
                re.compile(raw)
            except re.error as exc:
                raise fail(f"bad regex {raw!r}: {exc}") from None
        term = Term(field, (kind, raw), text)
    elif op not in ("=", "!=") and field not in ("status", "latency"):
        raise fail(f"{field} takes = or !=")
    elif field == "direction":
        direction = {"in": INBOUND, "inbound": INBOUND, "out": OUTBOUND, "outbound": OUTBOUND}.get(raw.lower())
        if direction is None:
            raise fail(f"direction is in or out, not {raw!r}")
        term = Term(field, direction, text)
    elif field in ("source", "destination"):
        try:
            target = parse_target(raw, namespace)
        except UsageError as exc:
            raise fail(exc.message) from None
        if target.kind is Kind.POD or target.name is None:
            raise fail(f"{raw!r}: from/to take deploy/NAME, svc/NAME or ns/NAME")
        name = "" if target.kind is Kind.NAMESPACE else target.name
        term = Term(field, (target.namespace, name, ""), text)
    elif field in ("source_identity", "destination_identity"):
        term = Term(field.removesuffix("_identity"), ("", "", raw), text)
    elif field == "method":
        term = Term(field, raw.upper(), text)
    elif field == "route":
        term = Term(field, raw, text)
    elif field == "grpc_status":
        code = GRPC_CODES.get(raw.upper()) if not raw.isdigit() else int(raw)
        if code is None:
            raise fail(f"unknown gRPC status {raw!r}")
        term = Term(field, code, text)
    elif field == "status":
        return _range_term(op, raw, text, fail)
    else:  # latency
        return _latency_term(op, raw, text, fail)
    return Not(term) if negate else term


def _range_term(op: str, raw: str, text: str, fail: Callable[[str], UsageError]) -> Expr:
    m = re.fullmatch(r"([1-5])xx|([1-5]\d\d)", raw.lower())
    if m is None:
        raise fail(f"status is a code (404) or a class (5xx), not {raw!r}")
    low, high = (int(m.group(1)) * 100, int(m.group(1)) * 100 + 99) if m.group(1) else (int(raw), int(raw))
    if op in ("=", "!="):
        term = Term("status", (low, high), text)
        return Not(term) if op == "!=" else term
    if op == ">=":
        return Term("status", (low, 999), text)
    if op == ">":
        return Term("status", (high + 1, 999), text)
    if op == "<":
        return Term("status", (0, low - 1), text)
    return Term("status", (0, high), text)  # <=


def _latency_term(op: str, raw: str, text: str, fail: Callable[[str], UsageError]) -> Expr:
    if op in ("=", "!="):
        raise fail("latency takes >=, >, < or <= (latency>=100ms)")
    micros = parse_duration_us(raw, fail)
    if op == ">=":
        return Term("min_latency_us", micros, text)
    if op == ">":
        return Term("min_latency_us", micros + 1, text)
    if op == "<":
        return Not(Term("min_latency_us", micros, text))
    return Not(Term("min_latency_us", micros + 1, text))


def parse_duration_us(raw: str, fail: Callable[[str], UsageError] | None = None) -> int:
    """Microseconds of a duration such as "100ms", "1.5s" or "250us"."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m)", raw.strip())
    if m is None:
        message = f"{raw!r} is not a duration; give a number and a unit: 250us, 100ms, 1.5s, 2m"
        raise fail(message) if fail else UsageError(message, hint="e.g. --min-latency 100ms")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_expr(text: str, namespace: str) -> Expr:
    """The expression `text` writes (not blank); UsageError naming the column of the first problem."""
    parser = _Parser(text, namespace)
    expr = parser.expr()
    parser.skip()
    if parser.pos < len(text):
        raise parser.fail(f"unexpected {text[parser.pos :]!r}")
    return expr
