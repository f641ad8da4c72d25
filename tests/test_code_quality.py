"""The lint, format and type checks, so the one test command runs them all (STYLE.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The code is the same whichever engine the suite runs on: checked once, on the SQLite run.
pytestmark = pytest.mark.engine_free


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_the_codebase_passes(command: list[str]) -> None:
    """ruff (lint and format) and mypy --strict report nothing on the package and tests."""
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# Words that belong to one engine. Capability code (core/, server/, ...) speaks the portable
# SQL and the seam's named methods; only storage/<engine>/ may spell an engine (issue 11).
_ENGINE_WORDS = re.compile(r"pragma|fts5|json_extract|tsvector|sqlite3", re.IGNORECASE)


def test_no_engine_specific_sql_outside_the_storage_layer() -> None:
    """grep -i for PRAGMA, fts5, json_extract, tsvector and sqlite3 in the package outside storage/ finds nothing."""
    package = ROOT / "mcp_memory_server"
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if (package / "storage") not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _ENGINE_WORDS.search(line)
    ]
    assert not found, "engine-specific words outside mcp_memory_server/storage/:\n" + "\n".join(found)
