"""The migration guide's feature index is the table ``celery-gcp migrate`` reports from."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from celery_gcp.migrate.features import FEATURES
from celery_gcp.migrate.guide import END, START, guide_block, render_index, write_guide

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "migration_guide" / "README.md"


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of ``markdown``."""
    found = set()
    for heading in re.findall(r"^#{2,4} (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_the_guides_feature_index_is_the_rendering_of_the_table() -> None:
    assert guide_block(GUIDE.read_text()) == render_index(), (
        "run: python -m celery_gcp.migrate.features --write-guide")


def test_every_entry_names_a_section_of_the_guide_and_says_what_to_do() -> None:
    sections = anchors(GUIDE.read_text())
    assert {"feature-index", "celery-gcp-migrate", "how-to-migrate"} <= sections
    for feature in FEATURES:
        assert feature.anchor in sections, feature.title
        assert feature.instead, feature.title
        assert feature.status in ("as-is", "differs", "no"), feature.title
    assert len({f.title for f in FEATURES}) == len(FEATURES)


def test_write_guide_replaces_only_the_block(tmp_path: Path) -> None:
    guide = tmp_path / "README.md"
    guide.write_text(f"# Guide\n\nbefore\n{START}\nstale\n{END}\nafter\n")
    write_guide(guide)
    assert guide.read_text() == f"# Guide\n\nbefore\n{START}\n{render_index()}{END}\nafter\n"
    out = subprocess.run([sys.executable, "-m", "celery_gcp.migrate.features"],
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, render_index())
