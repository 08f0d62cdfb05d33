"""Static typing: a task's .delay() and direct call are checked against its signature by mypy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).parent / "typing" / "calls.py"


def test_mypy_reports_exactly_the_marked_lines() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes",
         str(SAMPLE)], capture_output=True, text=True, timeout=300,
    )
    reported = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"calls\.py:(\d+): error: .*\[([a-z-]+)\]", out.stdout)
    }
    expected = {
        (number, code)
        for number, line in enumerate(SAMPLE.read_text().splitlines(), start=1)
        for code in re.findall(r"# E: ([a-z-]+)", line)
    }
    assert reported == expected, out.stdout
