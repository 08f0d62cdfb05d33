"""Static typing: a task's .delay() and direct call, and a FastAPI route's .delay() /
.scheduler().schedule(), are checked against their signatures by mypy; the route builders'
options (``.options()``, ``task_default_options``, ``client=``) against their TypedDicts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "typing"
SAMPLE_FILES = ["calls.py", "routes.py"]


@pytest.fixture(scope="module")
def mypy_output() -> str:
    """What one ``mypy --strict`` run over every sample prints (one start-up, one analysis of
    celery_gcp for all of them)."""
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes",
         *(str(SAMPLES / sample) for sample in SAMPLE_FILES)],
        capture_output=True, text=True, timeout=300,
    )
    return out.stdout


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_mypy_reports_exactly_the_marked_lines(sample: str, mypy_output: str) -> None:
    path = SAMPLES / sample
    reported = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(re.escape(sample) + r":(\d+): error: .*\[([a-z-]+)\]",
                             mypy_output)
    }
    expected = {
        (number, code)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for code in re.findall(r"# E: ([a-z-]+)", line)
    }
    assert reported == expected, mypy_output
