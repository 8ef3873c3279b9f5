"""Documentation that is generated from, or executed against, the code cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caseledger.catalogue import event_catalogue_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_the_event_catalogue_page_matches_the_code() -> None:
    page = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert page == event_catalogue_markdown(), (
        "docs/events.md is stale: run `python -m caseledger.catalogue > docs/events.md`"
    )


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "README.md has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own README
