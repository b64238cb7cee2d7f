"""Every relative link and image of the README and docs/ points to a file of the repository, and
every in-page anchor (``#section``) to a heading of the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _links(path: Path) -> list[tuple[int, str]]:
    found, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            found += [(number, target) for target in LINK.findall(line)]
    return found


def _anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {_anchor(line.lstrip("#")) for line in lines if re.match(r"^#{1,6} ", line)}


def test_anchor_follows_github_rules():
    assert _anchor(" Forgetting-aware training (`segforget.augment`)") == (
        "forgetting-aware-training-segforgetaugment"
    )


def test_relative_links_and_anchors_resolve():
    broken = []
    checked = 0
    for path in DOCUMENTS:
        for number, target in _links(path):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            checked += 1
            file_part, _, anchor = target.partition("#")
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{where} (no such heading)")
    assert checked >= 5, "the link parser found (almost) nothing"
    assert not broken, "broken links:\n" + "\n".join(broken)
