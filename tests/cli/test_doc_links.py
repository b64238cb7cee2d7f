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


def _headings(path: Path, levels: tuple[int, ...] = (2, 3)) -> list[tuple[int, str]]:
    """(level, text) of the headings outside code fences, in order."""
    found, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"^(#{1,6}) (.*)$", line)
        if not fenced and match and len(match.group(1)) in levels:
            found.append((len(match.group(1)), match.group(2)))
    return found


def test_readme_contents_lists_every_section_in_order():
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^( *)- \[(.*)\]\(#([^)]+)\)$", block, flags=re.MULTILINE)
    expected = [(level, heading) for level, heading in _headings(readme) if heading != "Contents"]
    assert [(len(indent) // 2 + 2, title) for indent, title, _ in listed] == expected
    assert [anchor for _, _, anchor in listed] == [_anchor(h) for _, h in expected]


def test_readme_headings_have_distinct_anchors():
    anchors = [_anchor(heading) for _, heading in _headings(ROOT / "README.md", (1, 2, 3, 4))]
    repeated = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not repeated, f"headings sharing an anchor (GitHub numbers them): {repeated}"
