"""Shown when no model is available: how to configure one. Memory keeps working."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Markdown

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

    def __init__(self, hint: str) -> None:
        super().__init__()
        self.hint = hint or "no model configured"

    def compose(self) -> ComposeResult:
        with Vertical(id="no-model-dialog"):
            yield Markdown(EXPLANATION.format(hint=self.hint))

    def action_show_memory(self) -> None:
        self.dismiss(None)
        self.app.run_action("show_memory")
