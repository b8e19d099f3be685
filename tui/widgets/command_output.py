"""A command the agent ran in the sandbox: its live tail while it runs (`LiveTail`), then its
(bounded) output, collapsed by default (`CommandOutput`)."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.widgets import Collapsible, Static

from .tool_call import bounded

TAIL_LINES = 20
TAIL_CHARS = 8_000
"""Characters of live output kept, whatever the line lengths: the memory stays bounded."""


def tail_lines(text: str, count: int = TAIL_LINES) -> str:
    """The last `count` lines of `text` as a terminal would leave them: what a carriage
    return went back over (a progress bar redrawn in place) is shown overwritten."""
    lines = text.split("\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the line a final newline opened is still empty
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines[-count:])


class LiveTail(Static):
    """The end of a running command's output, growing as pieces arrive (never read as
    markup; the app's line filter removes what the terminal would act on)."""

    DEFAULT_CSS = """
    LiveTail { padding: 0 0 0 2; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__("")
        self.received = ""

    def append(self, text: str) -> None:
        self.received = (self.received + text)[-TAIL_CHARS:]
        self.update(Text(tail_lines(self.received), no_wrap=True, overflow="ellipsis"))


class CommandOutput(Collapsible):
    DEFAULT_CSS = """
    CommandOutput { margin: 0 0 0 1; padding: 0; border: none; background: transparent; }
    CommandOutput > Contents { padding: 0 0 0 2; }
    CommandOutput.-failed > CollapsibleTitle { color: $warning; }
    """

    def __init__(self, command: str, exit_code: int | None, output: str, seconds: float,
                 isolated: bool) -> None:
        status = "timed out" if exit_code is None else f"exit {exit_code}"
        where = "" if isolated else " unisolated"
        super().__init__(
            Static(Text(bounded(output) or "(no output)")),
            title=Content(f"$ {command}  ({status}, {seconds:.1f}s{where})"),  # not markup
            collapsed=True,
        )
        self.set_class(exit_code != 0, "-failed")
