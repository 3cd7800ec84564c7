"""Tables in the docs that a script writes: the text between `<!-- NAME:begin -->` and
`<!-- NAME:end -->` belongs to the script, so the figures a page quotes are the ones it measured.

    from docs_markers import replace_between
    replace_between(Path("docs/speed.md"), "bench_pipeline", table)
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def between(page: Path, name: str) -> str:
    """What stands between the markers now (without the newlines next to them)."""
    text = page.read_text(encoding="utf-8")
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{page}: expected one {begin} and one {end}")
    stop = text.rindex("\n", 0, text.index(end)) + 1  # the end marker's line, indent and all
    return text[text.index(begin) + len(begin) : stop].strip("\n")


def replace_between(page: Path, name: str, body: str) -> None:
    """Put `body` between the markers, leaving the rest of the page as it is."""
    between(page, name)  # both markers there, once
    text = page.read_text(encoding="utf-8")
    begin, end = markers(name)
    start = text.index(begin) + len(begin)
    stop = text.rindex("\n", 0, text.index(end)) + 1  # the end marker keeps its indent
    page.write_text(text[:start] + "\n" + body.strip("\n") + "\n" + text[stop:], encoding="utf-8")
