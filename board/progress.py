"""Progress of the long commands (demo, reindex): a bar in a terminal, one line in a log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress(
    description: str, unit: str, total: int | None = None
) -> Iterator[Callable[[int], object]]:
    """Yields `update(n)`. In a terminal one tqdm bar for the phase, left finished on screen;
    when stderr is a pipe or a CI log, where each redraw of a bar would be a line of its own,
    a single line when the phase is done."""
    stream = sys.stderr
    if stream.isatty():
        with tqdm(total=total, desc=description, unit=f" {unit}", file=stream) as bar:
            yield bar.update
        return
    done = 0

    def update(count: int = 1) -> None:
        nonlocal done
        done += count

    started = time.perf_counter()
    yield update
    print(f"{description}: {done} {unit} in {time.perf_counter() - started:.1f} s", file=stream)
