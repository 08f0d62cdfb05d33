"""Static typing: a task's .delay() and direct call, and a FastAPI route's .delay() /
.scheduler().schedule(), are checked against their signatures by mypy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "typing"


@pytest.mark.parametrize("sample", ["calls.py", "routes.py"])
def test_mypy_reports_exactly_the_marked_lines(sample: str) -> None:
    path = SAMPLES / sample
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes",
         str(path)], capture_output=True, text=True, timeout=300,
    )
    reported = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(re.escape(sample) + r":(\d+): error: .*\[([a-z-]+)\]",
                             out.stdout)
    }
    expected = {
        (number, code)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for code in re.findall(r"# E: ([a-z-]+)", line)
    }
    assert reported == expected, out.stdout
