"""Progress of the long commands (demo, reindex): a bar in a terminal, one line in a log."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """One phase's progress on stderr. In a terminal a tqdm bar, left finished on screen;
    when stderr is a pipe or a CI log, where every redraw of a bar would be a line of its
    own, a single line when the phase is done.

    Use as tqdm (`update(n)`, `close()`) or as a context manager, which writes the line
    only when the phase got through."""

    def __init__(self, description: str, unit: str, total: int | None = None) -> None:
        self.description, self.unit, self.done = description, unit, 0
        self.started = time.perf_counter()
        self._bar = (
            tqdm(total=total, desc=description, unit=f" {unit}", file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )
        self._closed = False

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        elapsed = time.perf_counter() - self.started
        print(f"{self.description}: {self.done} {self.unit} in {elapsed:.1f} s", file=sys.stderr)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        elif self._bar is not None:
            self._bar.close()
