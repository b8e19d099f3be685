"""One tool call and its result: collapsed by default, the title says what was called. While
a command it runs is going, the title counts its seconds and its output's tail shows below."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Collapsible, Static

if TYPE_CHECKING:
    from .command_output import LiveTail

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
        self._live: LiveTail | None = None
        self._started: float | None = None
        self._ticker: Timer | None = None
        super().__init__(
            # Titles are Content: a str title is read as markup, and the model wrote it.
            Static(Text(bounded(args)), classes="tool-args"), title=Content(self.base_title),
            collapsed=True,
        )

    @property
    def running(self) -> bool:
        """True while a command of this call is shown live."""
        return self._started is not None

    def add_live(self, text: str, elapsed: float) -> None:
        """A piece of the running command's output (`elapsed` seconds after it started): the
        first starts the timer in the title (ticking each second); text goes to the tail
        shown below the title, visible while the call stays collapsed."""
        from .command_output import LiveTail

        started = time.monotonic() - elapsed
        if self._started is None:
            self._started = started
            self._ticker = self.set_interval(1.0, self._show_running)
        # The command's own clock wins when it is ahead (events queued): never count back.
        self._started = min(self._started, started)
        self._show_running()
        if text:
            if self._live is None:
                self._live = LiveTail()
                self.mount(self._live)
            self._live.append(text)

    def end_live(self) -> None:
        """The command is over: stop the timer and drop the tail (the final output follows
        as the call's result and the command's own block)."""
        if self._started is None:
            return
        self._started = None
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self._live is not None:
            self._live.remove()
            self._live = None
        self._set_title(self.base_title)

    def _show_running(self) -> None:
        if self._started is not None:
            seconds = int(time.monotonic() - self._started)
            self._set_title(f"{self.base_title}  running {seconds} s")

    def set_result(self, output: str, ok: bool) -> None:
        """Mark the title and add the output (now, or when mounted)."""
        self.end_live()
        self._set_title(f"{self.base_title}  {'✓' if ok else '✗'}")
        self._result = Static(Text(bounded(output) or "(no output)"), classes="tool-result")
        self._result.set_class(not ok, "-failed")
        if self.is_mounted:
            self._mount_result()

    def on_mount(self) -> None:
        self._apply_title()
        self._mount_result()

    def _set_title(self, title: str) -> None:
        self.title = Content(title)
        self._apply_title()
        # Collapsible re-applies its title while mounting; apply ours again after that.
        self.call_after_refresh(self._apply_title)

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
