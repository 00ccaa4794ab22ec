"""docs/index.md links every page in docs/ (issue 22: six pages could not be found from it)."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_docs_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    linked = {Path(target.split("#")[0]).name for target in re.findall(r"\]\(([^)\s]+)\)", index)}
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    missing = sorted(pages - linked)
    assert not missing, f"docs/index.md does not link {', '.join(missing)}: add a row for each"
    broken = sorted(name for name in linked if name.endswith(".md") and name != "README.md" and name not in pages)
    assert not broken, f"docs/index.md links pages that do not exist: {', '.join(broken)}"
