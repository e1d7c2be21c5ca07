"""A small, strict reader of the Prometheus text format, written apart from the writer under test.

It knows the 0.0.4 grammar only as far as our output uses it: `# HELP`/`# TYPE` lines, samples
with optional labels, and the three escapes of label values (backslash, double quote, newline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        """The one sample of `name` whose labels include `labels`."""
        found = [v for n, ls, v in self.samples if n == name and set(labels.items()) <= set(ls)]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(ls), v) for n, ls, v in self.samples if n == name]


def parse(text: str) -> Exposition:
    result = Exposition()
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in result.helps, f"second HELP for {name}"
            result.helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in result.types, f"second TYPE for {name}"
            result.types[name] = kind
        else:
            result.samples.append(_sample(line))
    seen = {(name, labels) for name, labels, _ in result.samples}
    assert len(seen) == len(result.samples), "duplicate series"
    return result


def _sample(line: str) -> tuple[str, Labels, float]:
    match = _NAME.match(line)
    assert match, line
    name, i = match.group(), match.end()
    labels: list[tuple[str, str]] = []
    if line[i] == "{":
        i += 1
        while line[i] != "}":
            label = _LABEL_NAME.match(line, i)
            assert label and line[label.end() : label.end() + 2] == '="', line
            i = label.end() + 2
            value: list[str] = []
            while line[i] != '"':
                if line[i] == "\\":
                    value.append(_ESCAPES[line[i + 1]])  # any other escape is an error
                    i += 2
                else:
                    assert line[i] != "\n"
                    value.append(line[i])
                    i += 1
            labels.append((label.group(), "".join(value)))
            i += 1
            if line[i] == ",":
                i += 1
        i += 1
    assert line[i] == " ", line
    return name, tuple(labels), float(line[i + 1 :])
