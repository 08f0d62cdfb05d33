"""Import time of celery_gcp against FastAPI, as ``python -X importtime`` reports it.

Run ``python benchmarks/imports.py`` (about half a minute); ``--runs N`` sets the fresh
interpreters per side (10), ``--strict`` exits with status 1 when the target is missed.

Each side is one statement in a fresh ``python -X importtime -c ...``; its figure is the sum of
the cumulative times of the top-level imports the statement made (those not already made at
interpreter start-up, read from a ``-c pass`` run), so start-up and exit are left out. The sides
alternate, the order rotating each round; the table shows each side's median and the median of
the per-round ratios (the sides of a round ran back to back).

- ``from celery_gcp import Celery``: what a project's code runs. It includes FastAPI, which
  the app's task endpoints are built on, so the ratio is 1 plus celery_gcp's own share.
  Target: at most 1.10 times ``import fastapi``.
- ``import celery_gcp`` and ``import celery_gcp.emulator``: the package's names load on first
  use, so these two stay far below FastAPI (printed for reference, no target).

Both sides read bytecode from a temporary ``PYTHONPYCACHEPREFIX`` filled during a warm-up, as
an installed package would: with ``PYTHONDONTWRITEBYTECODE=1`` an editable checkout would
otherwise be compiled on every run while site-packages have ``.pyc`` files.

Wall-clock figures on a shared machine swing by several per cent from run to run;
``--callgrind`` (with ``valgrind`` installed, about two minutes) also counts the instructions of
each statement, start-up subtracted, a ratio that does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from common import Row, fmt, interleave, paired, report

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "import fastapi"
TARGET = 1.10
#: The statement held to the target first, then the ones shown for reference.
STATEMENTS = ("from celery_gcp import Celery", "import celery_gcp", "import celery_gcp.emulator")


def top_level(stderr: str) -> dict[str, float]:
    """The top-level imports of a ``-X importtime`` report: module -> cumulative ms."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        # Nested imports are indented by two more spaces per level under the one space.
        if cumulative.strip().isdigit() and not name.startswith("  "):
            found[name.strip()] = int(cumulative) / 1e3
    return found


def run(statement: str, env: dict[str, str], startup: frozenset[str]) -> float:
    """Milliseconds of the imports ``statement`` makes in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT,
                         env=env, check=True, capture_output=True, text=True)
    return sum(ms for name, ms in top_level(out.stderr).items() if name not in startup)


def instructions(statement: str, env: dict[str, str]) -> int:
    """Instructions ``python -c statement`` runs, counted by valgrind's callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", statement], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return int(out.stderr.rsplit("Collected :", 1)[1].split()[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and each side's rounds; the exit status."""
    parser = argparse.ArgumentParser(description="celery_gcp import time vs fastapi")
    parser.add_argument("--runs", type=int, default=10, help="fresh interpreters per side")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions with valgrind (load-independent)")
    args = parser.parse_args(argv)
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind on PATH")
    with tempfile.TemporaryDirectory(prefix="celery-gcp-imports-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        empty = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], cwd=ROOT,
                               env=env, check=True, capture_output=True, text=True)
        startup = frozenset(top_level(empty.stderr))
        sides = [partial(run, s, env, startup) for s in (BASELINE, *STATEMENTS)]
        for side in sides:  # warm up: fill the bytecode cache and the page cache
            side()
        theirs, *ours = interleave(sides, args.runs)
        counted = {}
        if args.callgrind:
            start = instructions("pass", env)
            counted = {s: instructions(s, env) - start for s in (BASELINE, *STATEMENTS)}
    rows = []
    baseline = statistics.median(theirs)
    for i, (statement, samples) in enumerate(zip(STATEMENTS, ours, strict=True)):
        ratio, each = paired(samples, theirs)
        met = ratio <= TARGET if i == 0 else True
        rows.append(Row(f"{i + 1}. {statement}", f"{fmt(statistics.median(samples))} ms",
                        f"fastapi {fmt(baseline)} ms", ratio,
                        f"<= {TARGET:.2f}" if i == 0 else "-", met,
                        [f"rounds, ms: {', '.join(fmt(s) for s in samples)}",
                         f"per-round ratios: {each}"]))
        if counted:
            rows[-1].notes.append(f"instructions (callgrind): ratio "
                                  f"{counted[statement] / counted[BASELINE]:.3f}")
    print(f"import time, -X importtime cumulative, {args.runs} fresh interpreters per side, "
          f"medians | Python {sys.version.split()[0]}\n")
    ok = report(rows, name_width=34)
    print(f"  fastapi rounds, ms: {', '.join(fmt(s) for s in theirs)}")
    print(f"\nratio `{STATEMENTS[0]}` / `{BASELINE}`: {rows[0].ratio:.3f}")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
