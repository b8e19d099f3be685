"""One tool call and its result: collapsed by default, the title says what was called."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.content import Content
from textual.widgets import Collapsible, Static

ARG_PREVIEW = 60
OUTPUT_LIMIT = 4000


def summarize_arguments(arguments: dict[str, Any]) -> str:
    """A short one-line summary for the title: the first argument values, trimmed."""
    values = [v if isinstance(v, str) else json.dumps(v) for v in arguments.values()]
    line = " ".join(v.splitlines()[0] if v else "" for v in values[:2])
    return line if len(line) <= ARG_PREVIEW else line[: ARG_PREVIEW - 1] + "…"


def bounded(text: str, limit: int = OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more chars)"


class ToolCallView(Collapsible):
    DEFAULT_CSS = """
    ToolCallView { margin: 0 0 0 1; padding: 0; border: none; background: transparent; }
    ToolCallView > Contents { padding: 0 0 0 2; }
    ToolCallView .tool-args { color: $text-muted; }
    ToolCallView .tool-result.-failed { color: $error; }
    """

    def __init__(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self.call_id = call_id
        self.tool_name = name
        self.arguments = arguments
        self.base_title = f"{name} {summarize_arguments(arguments)}".rstrip()
        args = json.dumps(arguments, indent=2, ensure_ascii=False)
        self._result: Static | None = None
        super().__init__(
            # Titles are Content: a str title is read as markup, and the model wrote it.
            Static(Text(bounded(args)), classes="tool-args"), title=Content(self.base_title),
            collapsed=True,
        )

    def set_result(self, output: str, ok: bool) -> None:
        """Mark the title and add the output (now, or when mounted)."""
        title = f"{self.base_title}  {'✓' if ok else '✗'}"
        self.title = Content(title)
        self._apply_title()
        # Collapsible re-applies its title while mounting; apply ours again after that.
        self.call_after_refresh(self._apply_title)
        self._result = Static(Text(bounded(output) or "(no output)"), classes="tool-result")
        self._result.set_class(not ok, "-failed")
        if self.is_mounted:
            self._mount_result()

    def on_mount(self) -> None:
        self._apply_title()
        self._mount_result()

    def _apply_title(self) -> None:
        self._title.label = self.title
        # A label set while the title widget was still mounting may not have been drawn
        # (its watcher did not run yet): redraw it explicitly.
        if self._title.is_mounted:
            self._title._update_label()

    def _mount_result(self) -> None:
        contents = self.query(Collapsible.Contents)
        if self._result is not None and contents and not self._result.is_attached:
            contents.first().mount(self._result)
