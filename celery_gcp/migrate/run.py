"""``celery-gcp migrate PATH``: the codemod and the report over a file or a directory.

Exit status (also in the command's help and the guide's "How to migrate"):

- 0: nothing needs attention (with ``--check``: and nothing would be rewritten);
- 1: something needs attention: a use of a feature that differs or is absent, a Celery name
  celery_gcp has no home for (left as written), a file that is not valid Python; with
  ``--check``, also a file that would be rewritten;
- 2: PATH does not exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libcst as cst
from libcst.metadata import MetadataWrapper

from .detect import Detector
from .features import FEATURES
from .rewrite import Bindings, Rewriter

__all__ = ["SKIPPED", "Finding", "Mode", "Report", "migrate_file", "python_files", "run"]

Mode = Literal["diff", "write", "check"]
#: Directories never looked into.
SKIPPED = frozenset({".git", ".venv", "venv", "__pycache__", "site-packages", ".tox", ".nox"})
#: The guide section of a Celery name celery_gcp has no home for.
_MIRRORS = "exceptions-and-module-mirrors"


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``path:line: status: feature: what to do (guide: #anchor)``."""

    path: str
    line: int
    status: str
    feature: str
    instead: str
    anchor: str = ""

    @property
    def needs_attention(self) -> bool:
        """Whether the finding is more than information (an as-is rename is not)."""
        return self.status != "as-is"

    def __str__(self) -> str:
        guide = f" (guide: #{self.anchor})" if self.anchor else ""
        return f"{self.path}:{self.line}: {self.status}: {self.feature}: {self.instead}{guide}"


@dataclass
class Report:
    """What a run found: files looked at, files rewritten (or to rewrite), findings."""

    scanned: int = 0
    changed: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def exit_code(self, mode: Mode) -> int:
        """The command's exit status for this report (module docstring)."""
        attention = any(f.needs_attention for f in self.findings)
        return 1 if attention or (mode == "check" and self.changed) else 0

    def summary(self, mode: Mode) -> str:
        """The last line the command prints."""
        attention = sum(f.needs_attention for f in self.findings)
        verb = {"write": "rewritten", "diff": "to rewrite", "check": "would be rewritten"}[mode]
        return (f"migrate: {self.scanned} file(s) scanned, {len(self.changed)} {verb}, "
                f"{attention} finding(s) need attention, "
                f"{len(self.findings) - attention} for information")


def python_files(path: Path) -> Iterator[Path]:
    """``path`` itself, or the ``.py`` files under it (sorted; virtualenvs, VCS and caches
    skipped)."""
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.is_dir():
            if child.name not in SKIPPED:
                yield from python_files(child)
        elif child.suffix == ".py":
            yield child


def migrate_file(source: bytes, shown: str) -> tuple[bytes, list[Finding]]:
    """The rewritten source and the findings of one file (``shown``: its path in the report).
    A file that is not valid Python comes back unchanged, with one finding that says so."""
    try:
        module = cst.parse_module(source)
    except (cst.ParserSyntaxError, UnicodeDecodeError) as exc:
        line = getattr(exc, "raw_line", 1) or 1
        reason = " ".join(str(exc).split()) if isinstance(exc, UnicodeDecodeError) else \
            exc.message
        return source, [Finding(shown, line, "error", "not valid Python",
                                f"{reason}; left as is, fix it and run migrate again")]
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    bindings = Bindings()
    wrapper.visit(bindings)
    rewriter = Rewriter(bindings)
    new = wrapper.visit(rewriter)
    detector = Detector(module.code.splitlines() or [""])
    wrapper.visit(detector)
    findings = [_left(shown, left.line, left.name) for left in rewriter.left]
    left = {(f.line, f.feature) for f in findings}
    findings += [Finding(shown, use.line, use.feature.status, use.detail or use.feature.title,
                         use.feature.instead, use.feature.anchor)
                 for use in detector.uses if (use.line, use.detail) not in left]
    findings.sort(key=lambda f: f.line)
    return new.bytes, findings


def _left(shown: str, line: int, name: str) -> Finding:
    """A name the codemod left as written, with the table's advice when it has an entry."""
    for feature in FEATURES:
        if feature.kind == "name" and any(name == m or name.startswith(m + ".")
                                          for m in feature.match):
            return Finding(shown, line, "no", name, f"not in celery_gcp, left as written; "
                           f"{feature.instead}", feature.anchor)
    return Finding(shown, line, "no", name, "not in celery_gcp, left as written; see the "
                   "guide for what to use instead", _MIRRORS)


def _diff(old: bytes, new: bytes, shown: str) -> str:
    return "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=shown, tofile=shown))


def run(path: Path, mode: Mode, echo: Callable[[str], None]) -> Report:
    """Migrate ``path`` (a file or a directory) in ``mode``, printing with ``echo``: diffs
    (``diff``), ``would rewrite`` lines (``check``), then the findings and the summary."""
    report = Report()
    for file in python_files(path):
        shown = str(file)
        old = file.read_bytes()
        new, findings = migrate_file(old, shown)
        report.scanned += 1
        report.findings += findings
        if new == old:
            continue
        report.changed.append(shown)
        if mode == "write":
            file.write_bytes(new)
        elif mode == "check":
            echo(f"{shown}: would rewrite")
        else:
            echo(_diff(old, new, shown).rstrip("\n"))
    for finding in report.findings:
        echo(str(finding))
    echo(report.summary(mode))
    return report
