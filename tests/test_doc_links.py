"""Every relative link and anchor in README.md, CONTRIBUTING.md and docs/*.md resolves (review18, 7 December).

A link is ``[text](target)``; a target that is a URL (``scheme:``) is not followed. A file
target must exist in the checkout; an anchor (``#...``, alone or after a Markdown file) must be
one of that file's headings as GitHub spells them: lower case, punctuation other than ``-`` and
``_`` dropped, spaces as ``-``, a repeated heading suffixed ``-1``, ``-2``, ...
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or match is None:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken(page: Path) -> list[str]:
    problems = []
    for line in _prose(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                problems.append(f"{page.name}: {target}: no file {path}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{page.name}: {target}: no heading #{anchor} in {linked.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_and_anchor_resolves(page: Path) -> None:
    assert broken(page) == []


def test_the_checker_sees_a_broken_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# The `run` (once)\n## Notes\n## Notes\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[a](other.md#the-run-once) [b](other.md#notes-1) [c](#top) [d](missing.md) "
        "[e](other.md#nope) [f](https://example.com/x#y)\n```\n[g](missing-in-code.md)\n```\n"
        "# Top\n",
        encoding="utf-8",
    )
    assert broken(page) == [
        "page.md: missing.md: no file missing.md",
        "page.md: other.md#nope: no heading #nope in other.md",
    ]
