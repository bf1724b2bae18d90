#!/usr/bin/env python3
"""Checks the book in docs/ and the README's links (Python 3 standard library only).

Fails (exit 1, one line per problem: file, line, what) when:
  - a page listed in docs/src/SUMMARY.md does not exist;
  - a page in docs/src/ is not listed in SUMMARY.md;
  - a relative link in README.md or docs/src/**/*.md does not resolve: its file (or folder)
    must exist, and a `#anchor` must be a heading id of the target page (mdBook's ids:
    lower case, spaces to `-`, other punctuation dropped, repeats numbered `-1`, `-2`);
  - a link in a book page leaves docs/src/ (the rendered book holds nothing else: name a
    repository file as `code` instead).

Usage: check_docs.py [REPO_ROOT]   (default: the folder above this script's)
"""

import re
import sys
from pathlib import Path

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
# A code span may run over lines, not over a blank line (a paragraph break).
INLINE_CODE = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.S)
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_HREF = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HEADING_ATTR = re.compile(r"\s*\{#([^\s}]+)[^}]*\}\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) of the text outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def heading_text(raw):
    """A heading's text as mdBook sees it: inline markup and HTML tags dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    return text.replace("`", "").replace("*", "").replace("\\", "")


def normalize_id(text):
    """mdBook's `normalize_id`: alphanumerics, `_` and `-` kept (lower-cased), whitespace
    becomes `-`, everything else is dropped."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in "_-":
            out.append(ch.lower() if ch.isascii() else ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def heading_ids(path, cache={}):
    """The ids of a Markdown file's headings, numbered on repeats as mdBook does."""
    if path not in cache:
        ids, seen = set(), {}
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            match = HEADING.match(line)
            if not match:
                continue
            raw = match.group(2)
            explicit = HEADING_ATTR.search(raw)
            if explicit:
                ids.add(explicit.group(1))
                continue
            base = normalize_id(heading_text(raw))
            count = seen.get(base, 0)
            seen[base] = count + 1
            ids.add(base if count == 0 else f"{base}-{count}")
        cache[path] = ids
    return cache[path]


def prose(text):
    """The text with fenced code blocks and inline code spans blanked out (newlines kept, so
    offsets still give line numbers)."""
    lines = text.splitlines()
    kept = dict(prose_lines(text))
    blanked = "\n".join(kept.get(n, "") for n in range(1, len(lines) + 1))
    return INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), blanked)


def links(path):
    """(line number, target) of every link in a Markdown file's prose; a link's text may run
    over several lines."""
    text = prose(path.read_text(encoding="utf-8"))
    for pattern in (INLINE_LINK, HTML_HREF):
        for match in pattern.finditer(text):
            yield text.count("\n", 0, match.start(1)) + 1, match.group(1)
    for number, line in enumerate(text.splitlines(), 1):
        match = REFERENCE_DEF.match(line)
        if match:
            yield number, match.group(1)


def check_link(root, book, source, target):
    """None when `target` (written in `source`) resolves, else what is wrong."""
    if not target or SCHEME.match(target) or target.startswith("//"):
        return None  # an absolute URL (https:, mailto:…) is not ours to check
    path_part, _, anchor = target.partition("#")
    path_part = path_part.split("?", 1)[0]
    resolved = (source.parent / path_part).resolve() if path_part else source.resolve()
    if book in source.parents and book.resolve() not in resolved.parents and resolved != book.resolve():
        return f"link {target!r} leaves docs/src/ (the rendered book has only its pages: name the file as `code`)"
    if not resolved.exists():
        return f"link {target!r}: {resolved.relative_to(root.resolve()) if root.resolve() in resolved.parents else resolved} does not exist"
    if anchor:
        if resolved.is_dir() or resolved.suffix.lower() != ".md":
            return f"link {target!r}: an anchor on a file that is not a Markdown page"
        if anchor not in heading_ids(resolved):
            return f"link {target!r}: no heading with the id {anchor!r} in {resolved.name}"
    return None


def summary_pages(book):
    """(line number, target) of every chapter link in SUMMARY.md."""
    return links(book / "SUMMARY.md")


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    book = root / "docs" / "src"
    problems = []
    summary = book / "SUMMARY.md"
    if not summary.is_file():
        print(f"{summary}: missing")
        return 1
    listed = set()
    for number, target in summary_pages(book):
        page = target.partition("#")[0]
        if not page:
            problems.append(f"docs/src/SUMMARY.md:{number}: a chapter without a page (draft chapters are not allowed)")
            continue
        path = (book / page).resolve()
        listed.add(path)
        if not path.is_file():
            problems.append(f"docs/src/SUMMARY.md:{number}: page {page} does not exist")
    pages = sorted(p for p in book.rglob("*.md") if p.name != "SUMMARY.md")
    for page in pages:
        if page.resolve() not in listed:
            problems.append(f"{page.relative_to(root)}: not listed in docs/src/SUMMARY.md")
    for source in [root / "README.md", *pages]:
        if not source.is_file():
            problems.append(f"{source.relative_to(root)}: missing")
            continue
        for number, target in links(source):
            problem = check_link(root, book, source, target)
            if problem:
                problems.append(f"{source.relative_to(root)}:{number}: {problem}")
    for problem in problems:
        print(problem)
    checked = len(pages) + 1
    if problems:
        print(f"docs: {len(problems)} problem(s) in README.md and {checked} book pages")
        return 1
    print(f"docs: README.md and {checked} book pages, every page listed and every link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
