"""The app's output layer: no control character that a commit message, a file name, the
model or a command's output carried reaches the terminal, whichever widget shows it.

Textual writes a widget's text to the terminal as it is: an OSC 52 in a commit subject
would set the clipboard from the memory screen. Every line the app draws passes through
this filter (App.get_line_filters), which applies `terminal_safe` to each piece of text and
pads what it removed with spaces, so the line keeps the width Textual laid it out with.
"""

from __future__ import annotations

from evoagent.agent.terminal_text import terminal_safe
from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter


class TerminalSafe(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [_safe(segment) for segment in segments]


def _safe(segment: Segment) -> Segment:
    text, style, control = segment
    if control:
        return segment
    safe = terminal_safe(text)
    if safe == text:
        return segment
    return Segment(safe + " " * (cell_len(text) - cell_len(safe)), style)


TERMINAL_SAFE = TerminalSafe()
"""One instance: Textual caches filtered lines per filter object."""
