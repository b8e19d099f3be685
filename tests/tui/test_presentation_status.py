"""The status bar as a person reads it (#13): the whole model name (other parts give way
first), the phase a run is in, and the heavy imports warmed up after the first frame."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SIZE
from evoagent.agent import events as ev
from evoagent.tui import app as app_module
from evoagent.tui.app import EvoApp
from evoagent.tui.messages import AgentEvent
from evoagent.tui.widgets.status_bar import StatusBar
from helpers import wait_for
from textual.geometry import Region
from textual.worker import Worker, WorkerState

MODEL = "openrouter/qwen/qwen-2.5-coder-32b-instruct"


def shown(app: EvoApp) -> str:
    """The status bar's line as it is drawn (one row, the bar's width)."""
    bar = app.main.query_one(StatusBar)
    [line] = bar.render_lines(Region(0, 0, bar.size.width, 1))
    return line.text


async def ready_without_model(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: not app.status.starting, what="session")
    await wait_for(pilot, lambda: app.screen is not app.main, what="no-model dialog")
    await pilot.press("escape")


@pytest.mark.parametrize("width", [120, 80, 60])
async def test_the_model_name_is_whole_and_other_parts_give_way(project, width):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(width, SIZE[1])) as pilot:
        await ready_without_model(pilot)
        app.status = app.status.with_(model=MODEL, isolated=True, memories=1234, busy=True,
                                      prompt_tokens=12_345, cost_usd=0.1234)
        await pilot.pause()
        line = shown(app)
    assert line.startswith(f" {MODEL} │ ")
    assert "working" in line  # a running request is still said, even at 60 columns
    assert len(line.rstrip()) <= width
    if width == 120:
        assert line.rstrip() == (f" {MODEL} │ mode ask │ isolated │ 12.3k tok $0.1234 │ "
                                 "1234 commits │ working")


async def test_a_model_name_wider_than_the_bar_keeps_both_ends(project):
    model = "scripted//tmp/" + "very-long-directory/" * 5 + "first-run.json"
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(60, SIZE[1])) as pilot:
        await ready_without_model(pilot)
        app.status = app.status.with_(model=model)
        await pilot.pause()
        line = shown(app)
    assert line.startswith(" scripted//tmp/very-long")
    assert line.rstrip().endswith("directory/first-run.json")
    assert "…" in line


async def test_phase_events_show_in_the_bar_until_the_model_speaks(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(120, SIZE[1])) as pilot:
        await ready_without_model(pilot)
        seen = []
        for event, phase in [
            (ev.Phase("baseline_tests", "12 passed, 1 failed"),
             "baseline tests: 12 passed, 1 failed"),
            (ev.Message("Looking at clamp."), ""),
            (ev.Phase("locating"), "locating"),
            (ev.ToolCall("c1", "read", {"path": "calc.py"}), ""),
            (ev.Phase("compacting"), "compacting context"),
            (ev.Finished("fixed"), ""),
        ]:
            app.post_message(AgentEvent(event))  # as the controller posts them
            await wait_for(pilot, lambda p=phase: app.status.phase == p, what=phase or "clear")
            await pilot.pause()
            seen.append(shown(app).rstrip())
    assert seen[0].endswith(" │ baseline tests: 12 passed, 1 failed")
    assert seen[2].endswith(" │ locating")
    assert seen[4].endswith(" │ compacting context")
    assert not any("│ baseline" in line or "locating" in line for line in (seen[1], seen[3]))
    assert "compacting" not in seen[5]


async def test_a_long_phase_is_cut_to_the_bar(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(80, SIZE[1])) as pilot:
        await ready_without_model(pilot)
        app.status = app.status.with_(model=MODEL, busy=True, isolated=True)
        detail = "could not run: pytest could not start (exit 4): " + "x" * 80
        app.post_message(AgentEvent(ev.Phase("baseline_tests", detail)))
        await wait_for(pilot, lambda: app.status.phase, what="phase")
        await pilot.pause()
        line = shown(app)
        app.post_message(AgentEvent(ev.Message("The baseline could not run.")))
        await wait_for(pilot, lambda: not app.status.phase, what="phase cleared")
        await pilot.pause()
        after = shown(app)
    # The phase says what the work is (in place of "working"), cut to what is left.
    assert line.startswith(f" {MODEL} │ ask │ baseline tests: could not")
    assert line.endswith("…")
    assert "working" not in line and len(line) == 80
    assert after.rstrip().endswith(" │ working")


class WarmUpObserved(EvoApp):
    """Records the warm-up worker's states, and whether the main screen was laid out (its
    first frame drawn) when the worker started."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.warm_states: list[tuple[WorkerState, bool]] = []

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "warm-up":
            laid_out = bool(self.screen_stack) and self.main.query_one(StatusBar).region.height
            self.warm_states.append((event.state, bool(laid_out)))


async def test_heavy_imports_warm_up_in_a_thread_after_the_first_frame(project):
    app = WarmUpObserved(root=project.path, mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: (WorkerState.SUCCESS, True) in app.warm_states,
                       what="the warm-up worker", timeout=30)
        await ready_without_model(pilot)
    assert all(laid_out for _state, laid_out in app.warm_states)
    assert {"litellm", "lancedb"} <= set(sys.modules)


FRESH_PROCESS = """
import asyncio, os, sys
from pathlib import Path
from evoagent.tui.app import EvoApp

class App(EvoApp):
    CSS_PATH = str(Path(sys.modules["evoagent.tui.app"].__file__).with_name("app.tcss"))
    at_first_frame = None

    def warm_up(self):
        self.at_first_frame = sorted({"litellm", "lancedb"} & set(sys.modules))
        super().warm_up()

async def main():
    app = App(root=Path(sys.argv[1]), mine_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(1200):  # a minute at most
            if {"litellm", "lancedb"} <= set(sys.modules):
                break
            await pilot.pause(0.05)
    print(os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"))
    print(app.at_first_frame)

asyncio.run(main())
"""


@pytest.mark.slow  # a fresh interpreter that imports litellm and lancedb: seconds
def test_a_fresh_app_draws_before_importing_litellm_and_lancedb(project):
    env = {**os.environ, "OLLAMA_HOST": "127.0.0.1:9"}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(project.path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # Neither was imported when the first frame was up; then the warm-up imported both,
    # with litellm's cost map kept local.
    assert done.stdout.strip().splitlines()[-2:] == ["True", "[]"]
