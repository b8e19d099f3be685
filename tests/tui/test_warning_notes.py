"""A warning the kernel gives as a phase (an MCP server left out, a saved change that no
longer applies) stays in the conversation as a note: the status bar's phase is replaced by
the next step within moments, so it alone would lose the warning."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import SIZE
from evoagent.agent.scripted_provider import ScriptedReply
from evoagent.tui.app import EvoApp
from helpers import wait_for


async def send(pilot, text: str) -> None:
    pilot.app.main.prompt.value = text
    await pilot.press("enter")


def notes(app) -> str:
    return " ".join(str(n.render()) for n in app.main.query("Note"))


async def test_an_mcp_warning_stays_as_a_note(project, script):
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "evoagent"
    config.mkdir(parents=True, exist_ok=True)
    (config / "mcp.json").write_text(json.dumps(
        {"mcpServers": {"two words": {"command": "server"}}}))
    app = EvoApp(root=project.path, model=script([ScriptedReply(text="It clamps.")]),
                 mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, "what does clamp do?")
        await wait_for(pilot, lambda: "ignoring MCP server 'two words'" in notes(app),
                       what="the warning as a note")
        await wait_for(pilot, lambda: not app.status.busy, what="idle")
        assert "mcp: ignoring MCP server 'two words'" in notes(app)
        assert "evoagent: ignoring" not in notes(app)  # said once, without a doubled prefix
