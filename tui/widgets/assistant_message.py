"""The assistant's answer, streamed as Markdown from message deltas."""

from __future__ import annotations

from textual.widgets import Markdown


class AssistantMessage(Markdown):
    DEFAULT_CSS = """
    AssistantMessage { margin: 0 0 1 0; padding: 0 1; background: transparent; }
    """

    def __init__(self, text: str = "", **kwargs) -> None:
        super().__init__(text, **kwargs)
        self.text = text

    async def add_text(self, fragment: str) -> None:
        """Append a streamed fragment (appending re-parses only the last block)."""
        self.text += fragment
        await self.append(fragment)
