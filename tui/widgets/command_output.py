"""A command the agent ran in the sandbox, with its (bounded) output, collapsed by default."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.widgets import Collapsible, Static

from .tool_call import bounded


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
