"""Progress of a long command: a bar redrawn in place on a terminal, plain lines elsewhere (a
log, a pipe), where a redrawn line would only be noise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1
LINE_EVERY_PERCENT = 10


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._tty = self._stream.isatty()
        self._last_draw = 0.0
        self._last_step: dict[str, int] = {}

    def update(self, what: str, done: int, total: int) -> None:
        percent = 100 if total == 0 else min(100, done * 100 // total)
        if self._tty:
            now = time.monotonic()
            if done < total and now - self._last_draw < REDRAW_SECONDS:
                return
            self._last_draw = now
            filled = BAR_WIDTH * percent // 100
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            end = "\n" if done >= total else ""
            self._stream.write(f"\r{what:<15} [{bar}] {percent:3d}% {done:,}/{total:,}{end}")
        else:  # a line at each tenth, and one at the end
            step = 100 if done >= total else percent - percent % LINE_EVERY_PERCENT
            if self._last_step.get(what) == step:
                return
            self._last_step[what] = step
            self._stream.write(f"{what}: {done:,}/{total:,} ({percent}%)\n")
        self._stream.flush()
