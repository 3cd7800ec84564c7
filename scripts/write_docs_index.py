"""Write docs/index.md (the site's home page) from README.md, so the two never drift.

The README links into `docs/`; on the site those pages sit beside the home
page, so `docs/x.md` becomes `x.md`. tests/test_docs.py fails when the
committed docs/index.md is not what this script writes.

    python scripts/write_docs_index.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTE = "<!-- Generated from README.md by scripts/write_docs_index.py: edit the README. -->\n"


def index_from_readme(readme: str) -> str:
    """The home page: the README with its `docs/` links made relative to `docs/`."""
    text = re.sub(r"\]\(docs/", "](", readme)
    return NOTE + text


def main() -> None:
    out = ROOT / "docs" / "index.md"
    out.write_text(index_from_readme((ROOT / "README.md").read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
