"""`meshctl check explain CODE`: the catalogue document of a check code (checks/<CODE>.md).

The documents live in the top-level `checks/` folder of the source tree. An installed wheel carries them
as data files under `<prefix>/share/meshctl/checks/` (see pyproject.toml); both places are searched,
source tree first. A code whose document cannot be found is still explained from the registry.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from meshctl.cli.style import Palette, Tone
from meshctl.errors import UsageError
from meshctl.health.registry import CATALOGUES, CODE_PATTERN, Category, Check, catalogue

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_CODE_SPAN = re.compile(r"`([^`]+)`")


def catalogue_dirs() -> list[Path]:
    """Where checks/<CODE>.md may be, in the order searched."""
    installed = Path(sys.prefix) / "share" / "meshctl" / "checks"
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():  # running from a checkout (or an editable install)
        return [root / "checks", installed]
    return [installed]


def find_document(code: str) -> Path | None:
    for directory in catalogue_dirs():
        path = directory / f"{code}.md"
        if path.is_file():
            return path
    return None


def documented_codes(directory: Path) -> set[str]:
    return {p.stem for p in directory.glob("MC*.md") if CODE_PATTERN.match(p.stem)}


def all_checks(platforms: list[str] | None = None) -> dict[str, tuple[Category, Check]]:
    """Every check of the given platforms' catalogues (those that can be imported), by code."""
    found: dict[str, tuple[Category, Check]] = {}
    for platform in platforms or list(CATALOGUES):
        try:
            categories = catalogue(platform)
        except ModuleNotFoundError:  # a platform whose checks are not part of this installation
            continue
        for category in categories:
            for check in category.checks:
                found.setdefault(check.code, (category, check))
    return found


def explain(code: str, *, color: bool = False, platforms: list[str] | None = None) -> str:
    """The document of `code`, rendered for a terminal (or plain)."""
    code = code.strip().upper()
    if not CODE_PATTERN.match(code):
        raise UsageError(
            f"{code!r} is not a check code", hint="codes look like MC4007; `meshctl check explain` lists them"
        )
    path = find_document(code)
    if path is not None:
        return render_markdown(path.read_text(encoding="utf-8"), color=color)
    known = all_checks(platforms).get(code)
    if known is None:
        raise UsageError(f"no check has the code {code}", hint="`meshctl check explain` lists every code")
    category, check = known
    return f"{code}: {check.description}\ncategory: {category.id}\nfix: {check.hint}\n"


def listing(platforms: list[str] | None = None) -> str:
    """One line per known code: code, category and description."""
    checks = all_checks(platforms)
    width = max((len(category.id) for category, _ in checks.values()), default=0)
    lines = [
        f"{code}  {category.id:<{width}}  {check.description}" for code, (category, check) in sorted(checks.items())
    ]
    return "\n".join(lines) + "\n"


def render_markdown(text: str, *, color: bool) -> str:
    """Headings in bold, code spans highlighted, the rest as written: enough for short documents."""
    if not color:
        return text if text.endswith("\n") else text + "\n"
    paint = Palette(color)
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out.append("    " + paint(Tone.CODE, line))
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(paint(Tone.STRONG, heading[2]))
            continue
        out.append(_CODE_SPAN.sub(lambda m: paint(Tone.CODE, m[1]), line))
    return "\n".join(out) + "\n"
