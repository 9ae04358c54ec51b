"""The documentation stays a guide a person can follow: a short README whose first commands are
the two that work on a fresh machine, and pages whose relative links and anchors all lead
somewhere. No database, no Dagster: plain text checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_LINES = 200

FENCE = re.compile(r"^(```|~~~)")
# [text](target) or [text](target "title"); images share the syntax and are checked the same way.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks: a link or heading inside a code sample is not one."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def fenced_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lower-cased, punctuation other than
    hyphens and underscores removed, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, repeated titles numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path, repo: Path = REPO) -> list[str]:
    """Each relative link of ``page`` that names no file of ``repo``, or a heading its markdown
    target lacks, as ``page: target (why)``."""
    problems: list[str] = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if EXTERNAL.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(repo)}: {target}"
            if not resolved.is_relative_to(repo):
                problems.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where} (no heading with that anchor)")
    return problems


def test_readme_is_a_short_guide() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; move detail into docs/ (at most {MAX_README_LINES})"
    )


def test_readme_starts_with_the_two_commands() -> None:
    blocks = fenced_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no fenced code block"
    commands = [line.strip() for line in blocks[0].splitlines() if line.strip()]
    assert "make demo" in commands and "make test" in commands, blocks[0]


def test_docs_pages_exist() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "honest-gate.md", "cli.md", "operations.md"} <= names, sorted(names)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_no_issue_history_in_user_documentation(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.findall(r"\bissues?\s+#?\d+", text, re.IGNORECASE)


def test_github_slugs() -> None:
    assert github_slug("The `brain` command") == "the-brain-command"
    assert github_slug("Runs that die, steps that hit a database blip") == (
        "runs-that-die-steps-that-hit-a-database-blip"
    )
    assert github_slug("1. Positions that respect costs") == "1-positions-that-respect-costs"
    assert github_slug("Throughput, the predictor, the bar store and importance") == (
        "throughput-the-predictor-the-bar-store-and-importance"
    )
    assert github_slug("See [the gate](gate.md) now") == "see-the-gate-now"


def test_the_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Known part\n\n## Known part\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n## Local heading\n\n"
        "[ok](docs/other.md) [ok](docs/other.md#known-part) [ok](docs/other.md#known-part-1)\n"
        "[ok](#local-heading) [web](https://example.com/missing.md) `[code](nowhere.md)`\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#unknown) [bad](#nothing)\n"
        "[escape](../outside.md)\n"
        "```\n[in a code block](nowhere.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md: docs/missing.md (no such file)",
        "README.md: docs/other.md#unknown (no heading with that anchor)",
        "README.md: #nothing (no heading with that anchor)",
        "README.md: ../outside.md (outside the repository)",
    ]
