"""Shown when no model is available: how to configure one. Memory keeps working.

On a first run the repository's history is being mined meanwhile: the dialog carries its
own mining bar (the main screen's would be under it), fed by the app like the main one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..widgets.mining_bar import MiningBar

EXPLANATION = """\
# No model configured

evoagent could not find a model to talk to:

> {hint}

Any of these works:

- set an API key in the environment, e.g. `export ANTHROPIC_API_KEY=...`
  (or `OPENAI_API_KEY`, `GEMINI_API_KEY`, `OPENROUTER_API_KEY`), then restart;
- run a local model with Ollama (`ollama pull qwen2.5-coder`);
- name one: `model = "provider/name"` in `.evoagent/config.toml`,
  `EVOAGENT_MODEL=...`, or `/model provider/name` here.

Memory and runs work without a model: **F2** memory, **F3** runs.

Press **Esc** to close.
"""


class NoModelScreen(ModalScreen[None]):
    CSS_PATH = "no_model.tcss"
    BINDINGS = [
        Binding("escape,q,enter", "dismiss", "Close"),
        Binding("f2", "show_memory", "Memory"),
    ]

    def __init__(self, hint: str, mining: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.hint = hint or "no model configured"
        self._mining = mining
        """(done, total) of the mining under way when the dialog opened."""

    def compose(self) -> ComposeResult:
        with Vertical(id="no-model-dialog"):
            yield MiningBar()
            # Focused (the first focusable): arrows, Page Up/Down and the wheel scroll it
            # when the terminal is shorter than the text.
            with VerticalScroll(id="no-model-text"):
                yield Markdown(EXPLANATION.format(hint=self.hint))

    def on_mount(self) -> None:
        if self._mining is not None:
            self.mining(*self._mining)

    # -- called by the app, like the main screen's (attributes down) -------------------

    def mining(self, done: int, total: int) -> None:
        self._mining = (done, total)
        for bar in self.query(MiningBar):  # none yet when pushed a moment ago: on_mount shows it
            bar.show_progress(done, total)

    def mining_done(self) -> None:
        self._mining = None
        for bar in self.query(MiningBar):
            bar.finish()

    def action_show_memory(self) -> None:
        self.dismiss(None)
        self.app.run_action("show_memory")
