"""Small output helpers shared by commands: text, JSON, and a progress line on terminals.

Commands print through `echo` and `emit_json` only: what they print can come from the
repository, the model or a sandbox, and must not reach the terminal as escape sequences.
"""

from __future__ import annotations

import json
import sys
import time
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
