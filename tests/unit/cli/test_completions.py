"""completions/ holds the generated scripts; they must match what `meshctl completion` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.cli.completion import Shell, completion_script

COMPLETIONS = Path(__file__).resolve().parents[3] / "completions"
FILES = {Shell.BASH: "meshctl.bash", Shell.ZSH: "_meshctl", Shell.FISH: "meshctl.fish"}


@pytest.mark.parametrize("shell", list(Shell))
def test_completion_scripts_are_in_sync(shell: Shell) -> None:
    committed = (COMPLETIONS / FILES[shell]).read_text()
    assert committed == completion_script(shell), (
        f"completions/{FILES[shell]} is stale: run `python -m tests.unit.cli.test_completions`"
    )


if __name__ == "__main__":
    for each, name in FILES.items():
        (COMPLETIONS / name).write_text(completion_script(each))
