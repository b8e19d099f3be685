"""Small output helpers shared by commands: text, JSON, a progress bar on terminals, and a
status line for long jobs that reads well on a terminal and in a CI log alike.

Commands print through `echo` and `emit_json` only: what they print can come from the
repository, the model or a sandbox, and must not reach the terminal as escape sequences.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from ..terminal_text import terminal_safe, terminal_safe_json


def echo(message: object = "", err: bool = False, nl: bool = True) -> None:
    """click.echo for text output: control characters and escape sequences removed."""
    click.echo(terminal_safe(str(message)), err=err, nl=nl)


def emit_json(data: Any) -> None:
    """JSON output: every string exact, the characters a terminal obeys \\u-escaped."""
    click.echo(terminal_safe_json(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


def emit_json_line(data: Any) -> None:
    """One compact JSON document on one line (JSONL, stream-json), exact like `emit_json`."""
    click.echo(terminal_safe_json(json.dumps(data, ensure_ascii=False, default=str)))


class ProgressLine:
    """`label done/total (rate/s)` redrawn in place on stderr; silent when not a TTY."""

    def __init__(self, label: str, unit: str, enabled: bool | None = None):
        self.label = label
        self.unit = unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        rate = done / max(now - self.started, 1e-6)
        width = 24
        filled = int(width * done / total) if total else width
        bar = "█" * filled + "░" * (width - filled)
        sys.stderr.write(f"\r{self.label} {bar} {done}/{total} {self.unit} ({rate:,.0f}/s) ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def clock_text(seconds: float | None) -> str:
    """`mm:ss` (minutes past 59 keep counting: `75:03`); `--:--` when not known yet."""
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(max(0, round(seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"


class StatusLine:
    """A long job's status on stderr, readable wherever stderr goes.

    On a terminal the status is one line redrawn in place. Anywhere else (CI logs, pipes,
    files) each shown update is a line of its own, at most one every `every` seconds, so an
    hour of work leaves a trail to read rather than a flood; `close` shows the last update
    if it was held back. `line` prints a permanent line (a heading) above the status.
    Everything shown goes through `terminal_safe`.
    """

    REDRAW = 0.1
    """Seconds between redraws on a terminal."""

    def __init__(
        self,
        tty: bool | None = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self._shown_at: float | None = None
        self._held = ""
        """The newest update not shown yet."""
        self._drawn = ""
        """On a terminal: the status line on screen now (without its newline)."""

    def line(self, text: str) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")  # the status makes room, then comes back below
        echo(text, err=True)
        if self._drawn:
            self._draw(self._drawn)

    def update(self, text: str) -> None:
        now = self.clock()
        wait = self.REDRAW if self.tty else self.every
        if self._shown_at is not None and now - self._shown_at < wait:
            self._held = text
            return
        self._shown_at = now
        self._held = ""
        self._show(text)

    def close(self) -> None:
        if self._held:
            self._show(self._held)
            self._held = ""
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = ""

    def _show(self, text: str) -> None:
        if self.tty:
            self._draw(text)
        else:
            echo(text, err=True)

    def _draw(self, text: str) -> None:
        text = " ".join(terminal_safe(text).split())
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()
        self._drawn = text
