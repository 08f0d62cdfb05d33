"""What the benchmark scripts share: interleaved rounds, number formatting, the report table."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import httpx

__all__ = ["Row", "fmt", "interleave", "progress", "report"]

T = TypeVar("T")


def interleave(sides: Sequence[Callable[[], T]], rounds: int) -> list[list[T]]:
    """Run every side once per round, rotating the order each round; samples per side."""
    samples: list[list[T]] = [[] for _ in sides]
    for r in range(rounds):
        for k in range(len(sides)):
            i = (r + k) % len(sides)
            gc.collect()
            samples[i].append(sides[i]())
    return samples


async def post_many(client: httpx.AsyncClient, path: str, body: bytes,
                    headers: Mapping[str, str], count: int) -> float:
    """Requests/s of ``count`` POSTs of ``body`` to ``path``, one after another; each must
    answer 200."""
    start = time.perf_counter()
    for _ in range(count):
        response = await client.post(path, content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    return count / (time.perf_counter() - start)


def paired(ours: Sequence[float], baseline: Sequence[float]) -> tuple[float, str]:
    """The median of the per-round ratios ours / baseline, and the ratios as text.

    The two sides of a round ran one right after the other, so each round's ratio is immune to
    the machine slowing down or speeding up across the run, which a ratio of medians is not.
    """
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    if len(ratios) > 15:  # too many to read: their spread
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        return statistics.median(ratios), (f"{len(ratios)} rounds, quartiles {q1:.3f}, "
                                           f"{q2:.3f}, {q3:.3f}")
    return statistics.median(ratios), ", ".join(f"{r:.3f}" for r in ratios)


def fmt(value: float) -> str:
    """A number with about three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def progress(step: str) -> None:
    """Say on stderr what is running (a full run takes minutes)."""
    print(f"[{time.strftime('%H:%M:%S')}] {step} ...", file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of a report: both sides as text, their ratio, the target and whether it was met."""

    name: str
    ours: str
    baseline: str
    ratio: float | None
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)


def report(rows: Sequence[Row], name_width: int = 28, target_width: int = 11) -> bool:
    """Print the table and the notes; whether every target was met."""
    print(f"{'benchmark':<{name_width}} {'ours':>16} {'baseline':>20} {'ratio':>7} "
          f"{'target':>{target_width}}  met")
    for row in rows:
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
        print(f"{row.name:<{name_width}} {row.ours:>16} {row.baseline:>20} {ratio:>7} "
              f"{row.target:>{target_width}}  {'yes' if row.met else 'NO'}")
    print()
    for row in rows:
        for note in row.notes:
            print(f"  {row.name.split()[0]} {note}")
    return all(row.met for row in rows)
