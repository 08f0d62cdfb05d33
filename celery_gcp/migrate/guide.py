"""The migration guide's "Feature index", rendered from the one table of features.

The block sits between two markers in migration_guide/README.md; ``write_guide`` replaces it,
and a test compares it with ``render_index`` so the guide and ``celery-gcp migrate`` agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .features import FEATURES, Feature

__all__ = ["END", "GUIDE", "START", "guide_block", "render_index", "write_guide"]

START = "<!-- feature-index:start -->"
END = "<!-- feature-index:end -->"
#: The guide in a source checkout (the package's parent is the repository root).
GUIDE = Path(__file__).resolve().parents[2] / "migration_guide" / "README.md"


def _found_by(feature: Feature) -> str:
    if not feature.match:
        return "a name in Celery's table of old setting names"
    names = ", ".join(f"`{m}`" for m in feature.match)
    if feature.kind == "keyword":
        calls = ", ".join(f"`{c}()`" for c in feature.calls)
        return f"keyword {names} of {calls}"
    if feature.kind == "attribute":
        where = {"app": "on the app", "self": "on `self`", "any": "on any object"}[feature.on]
        return f"attribute {names} {where}"
    return f"{feature.kind} {names}"


def render_index(features: Iterable[Feature] = FEATURES) -> str:
    """The index as Markdown: one row per feature, in the table's order."""
    rows = ["| Feature | Found by | Status | What to do | Section |", "|---|---|---|---|---|"]
    for f in features:
        rows.append(f"| {f.title} | {_found_by(f)} | {f.status} | {f.instead} | "
                    f"[{f.anchor}](#{f.anchor}) |")
    return "\n".join(rows) + "\n"


def guide_block(text: str) -> str:
    """The text between the markers of ``text`` (the guide); ValueError without them."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the guide has no {START} ... {END} block: add both markers")
    return text[start + len(START):end].strip("\n") + "\n"


def write_guide(path: Path) -> None:
    """Replace the block between the markers of the guide at ``path`` with the rendering."""
    text = path.read_text(encoding="utf-8")
    guide_block(text)  # both markers are there
    start, end = text.find(START) + len(START), text.find(END)
    path.write_text(f"{text[:start]}\n{render_index()}{text[end:]}", encoding="utf-8")
