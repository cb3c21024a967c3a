"""The manual's commands exist as written: every `acgan ...` line of a shell block in README.md and docs/ parses
(its command and every option; run with --help, which click answers only after parsing every option), and no page
speaks of the project's history."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import run_cli

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def shell_commands(page: Path) -> list[str]:
    """The `acgan ...` command lines of a page's ```bash blocks, comments stripped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("acgan "):
                commands.append(line)
    return commands


COMMANDS = [(page.name, command) for page in PAGES for command in shell_commands(page)]


def test_the_manual_has_commands_to_check() -> None:
    assert len(COMMANDS) >= 20 and {page for page, _ in COMMANDS} >= {"README.md", "training.md", "serving.md"}


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{page}:{cmd[:60]}" for page, cmd in COMMANDS])
def test_each_documented_command_parses(page: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*shlex.split(command)[1:], "--help"], capsys)
    assert code == 0 and "Usage:" in out, f"{page}: {command}\n{err}"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_no_page_speaks_of_sessions_issues_or_this_vm(page: Path) -> None:
    text = page.read_text()
    for pattern in (r"\bsession\b", r"\bissue \d+", r"\bthis VM\b", r"\bseed 00\d\b"):
        assert not re.search(pattern, text, flags=re.I), (page.name, pattern)
