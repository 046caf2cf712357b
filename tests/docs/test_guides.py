"""
Every guide in docs/ carries at least one runnable example, and each runs.

A runnable example is a fenced block whose info string is
``python runnable``; it must work as a script on its own, in an empty
directory, with nothing but the project and its test extras installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["retry", "breakers", "degradation", "discovery", "sagas", "backup"]
FENCE = re.compile(r"^```python runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for index, match in enumerate(FENCE.finditer(path.read_text()), 1):
            found.append((path.stem, index, match.group(1)))
    return found


@pytest.mark.parametrize("guide", GUIDES)
def test_each_family_guide_has_a_runnable_example(guide: str) -> None:
    text = (DOCS / f"{guide}.md").read_text()

    assert FENCE.search(text), f"docs/{guide}.md has no ```python runnable block"


@pytest.mark.parametrize(
    ("guide", "index", "code"),
    runnable_blocks(),
    ids=[f"{guide}-{index}" for guide, index, _ in runnable_blocks()],
)
def test_runnable_examples_run(
    guide: str, index: int, code: str, tmp_path: Path
) -> None:
    script = tmp_path / f"{guide}_{index}.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert done.returncode == 0, f"docs/{guide}.md example {index}:\n{done.stderr}"
