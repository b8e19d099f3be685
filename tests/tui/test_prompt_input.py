"""The request input: pasted blocks arrive whole, Shift+Enter / Ctrl+J add lines and Enter
sends, Up/Down walk the prompts sent before (kept per repository, across restarts), `@`
opens the file finder, Tab completes slash commands; and the history file itself."""

from __future__ import annotations

import json

import pytest
from conftest import SIZE, call
from evoagent.agent.scripted_provider import get_script
from evoagent.tui.app import EvoApp
from evoagent.tui.prompt_history import HISTORY_FILE, PromptHistory
from evoagent.tui.screens.file_finder import FileFinderScreen
from evoagent.tui.widgets.prompt_input import PromptInput
from helpers import wait_for
from textual import events, on
from textual.app import App, ComposeResult

TRACEBACK = "\n".join(
    ["Traceback (most recent call last):"]
    + [f'  File "calc.py", line {n}, in frame_{n}\n    clamp(value_{n}, 0, 10)' for n in range(14)]
    + ["ValueError: clamp returned the lower bound above the upper bound"]
)
assert len(TRACEBACK.splitlines()) == 30


def model_saw(model: str) -> str:
    """Every text the scripted model was sent, joined."""
    script = get_script(model.removeprefix("scripted/"))
    return "\n".join(m["content"] for messages, _tools in script.requests for m in messages
                     if isinstance(m.get("content"), str))


async def ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.status.model, what="session")


async def test_a_pasted_traceback_arrives_whole_in_the_request(project, script):
    model = script([call("finish", summary="explained the traceback")])
    app = EvoApp(root=project.path, model=model, mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        # As a terminal pastes (bracketed paste): one event, lines ending in carriage returns.
        app.post_message(events.Paste(TRACEBACK.replace("\n", "\r")))
        await pilot.pause()
        assert app.main.prompt.value == TRACEBACK  # the newlines did not send it
        assert not app.status.busy
        await pilot.press("enter")
        await wait_for(pilot, lambda: get_script(model.removeprefix("scripted/")).requests,
                       what="the model call")
        await wait_for(pilot, lambda: not app.status.busy, what="the request to end")
        assert app.main.prompt.value == ""
    assert TRACEBACK in model_saw(model)


@pytest.mark.parametrize("newline", ["shift+enter", "ctrl+j"])
async def test_newline_keys_add_lines_and_enter_sends(project, script, newline):
    model = script([call("finish", summary="noted")])
    app = EvoApp(root=project.path, model=model, mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"fix", newline, *"it", newline, newline, *"now")
        assert app.main.prompt.value == "fix\nit\n\nnow"
        assert app.main.prompt.outer_size.height == 4 + 2  # four lines and the border
        undo = app.screen.active_bindings["ctrl+z"]  # the app's undo, not the text area's
        assert (undo.node, undo.binding.action) == (app, "undo")
        assert not app.status.busy
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.status.busy and model_saw(model),
                       what="the request")
    assert "\nfix\nit\n\nnow\n" in model_saw(model)


async def test_up_recalls_prompts_and_the_history_outlives_the_app(project, script):
    sent = ["/mode auto_edits", "/mode full_auto"]
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        prompt = app.main.prompt
        for text in sent:
            prompt.value = text
            await pilot.press("enter")
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.value == "/mode full_auto"
        await pilot.press("down")
        assert prompt.value == "draft"
        history = project.path / ".evoagent" / HISTORY_FILE
        await wait_for(pilot, lambda: history.is_file() and len(history.read_text().splitlines())
                       == 2, what="the history file")
    assert [json.loads(line)["text"] for line in history.read_text().splitlines()] == sent

    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        prompt = app.main.prompt
        await wait_for(pilot, lambda: prompt._store is not None, what="the history")
        await pilot.press("up")
        assert prompt.value == "/mode full_auto"
        await pilot.press("up")
        assert prompt.value == "/mode auto_edits"
        await pilot.press("up")  # the oldest: stays
        assert prompt.value == "/mode auto_edits"
        await pilot.press("down", "down")
        assert prompt.value == ""  # back to the (empty) draft
        await pilot.press("up", "enter")
        assert app.status.mode == "full_auto"  # a recalled prompt is sent like a typed one


async def test_at_a_word_start_opens_the_finder_and_inserts_the_path(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"mail", "@")  # inside a word: just a character
        assert app.main.prompt.value == "mail@"
        assert not isinstance(app.screen, FileFinderScreen)
        app.main.prompt.value = "see"
        await pilot.press("ctrl+j", "@")  # a line start is a word start
        await wait_for(pilot, lambda: isinstance(app.screen, FileFinderScreen), what="finder")
        await wait_for(pilot, lambda: app.screen.options.option_count, what="files")
        await pilot.press(*"calc", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FileFinderScreen), what="pick")
        assert app.main.prompt.value == "see\n@calc.py "
        assert app.main.prompt.has_focus


async def test_tab_completes_slash_commands(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        prompt = app.main.prompt
        await pilot.press(*"/ev")
        assert prompt.suggestion == "olve"  # ghost text, as the old input showed
        await pilot.press("tab")
        assert prompt.value == "/evolve "  # unique: completed, ready for an argument
        prompt.value = "/mo"
        await pilot.press("tab")
        assert prompt.value == "/mode"  # /model and /mode: up to where they differ
        await pilot.press("right")  # Right accepts the ghost text
        assert prompt.value == "/model"
        prompt.value = "/mo"
        await pilot.press("tab", *" full_auto", "enter")
        assert app.status.mode == "full_auto"
        prompt.value = "not a command"
        await pilot.press("tab")  # nothing to complete: Tab moves the focus as usual
        assert not prompt.has_focus


class PromptApp(App):
    """The input alone, for what needs no session: sizes and walking multi-line history."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def compose(self) -> ComposeResult:
        yield PromptInput()

    @on(PromptInput.Submitted)
    def _sent(self, message: PromptInput.Submitted) -> None:
        self.sent.append(message.text)


async def test_the_input_grows_to_eight_lines_then_scrolls():
    app = PromptApp()
    async with app.run_test(size=(60, 24)) as pilot:
        prompt = app.query_one(PromptInput)
        heights = []
        for lines in (0, 3, 8, 30):
            prompt.value = "\n".join(f"line {n}" for n in range(lines))
            await pilot.pause()
            heights.append(prompt.outer_size.height - 2)  # less the border
        assert heights == [1, 3, 8, 8]
        assert prompt.max_scroll_y == 30 - 8
        await pilot.press("enter")
        assert app.sent == ["\n".join(f"line {n}" for n in range(30))]


async def test_up_and_down_move_within_a_multi_line_prompt_before_leaving_it():
    app = PromptApp()
    async with app.run_test(size=(60, 24)) as pilot:
        prompt = app.query_one(PromptInput)
        for text in ("one", "two\nlines", "three"):
            prompt.value = text
            await pilot.press("enter")
        await pilot.press(*"dra", "ctrl+j", *"ft")
        await pilot.press("up")  # the draft's second line → its first
        assert prompt.value == "dra\nft"
        shown = []
        for _ in range(4):
            await pilot.press("up")
            shown.append((prompt.value, prompt.cursor_location[0]))
        # Up lands on a recalled prompt's first line, so the next Up goes on back.
        assert shown == [("three", 0), ("two\nlines", 0), ("one", 0), ("one", 0)]
        await pilot.press("down")
        assert prompt.value == "two\nlines"
        await pilot.press("down")  # on its last line: the next Down leaves it
        assert prompt.value == "three"
        await pilot.press("down")
        assert prompt.value == "dra\nft"
        await pilot.press("shift+up")  # selecting never recalls
        assert prompt.value == "dra\nft"
    assert app.sent == ["one", "two\nlines", "three"]


def test_history_skips_damaged_lines_and_repeats_and_keeps_the_newest(tmp_path):
    history = PromptHistory(tmp_path, limit=5)
    (tmp_path / HISTORY_FILE).write_bytes(
        b'{"text": "first"}\n{"text": "cut sho\n\xff\xfe not json\n[[[[[[[[[[[[\n'
        b'{"other": 1}\n{"text": 3}\n"a string"\n{"text": "second"}\n'
        + b"[" * 100_000 + b"\n"
    )
    assert history.load() == ["first", "second"]
    assert history.append("second") is False  # the newest again: not stored
    assert history.append("   ") is False
    assert history.append("line 1\nline 2 \udc80")
    assert history.load() == ["first", "second", "line 1\nline 2 \udc80"]
    for n in range(6):
        history.append(f"p{n}")
    assert history.load() == ["p1", "p2", "p3", "p4", "p5"]
    assert len((tmp_path / HISTORY_FILE).read_text().splitlines()) == 5  # bounded on disk
    assert history.append("p1")  # a repeat, but not of the newest
    assert history.load()[-2:] == ["p5", "p1"]


def test_history_never_raises_where_it_cannot_read_or_write(tmp_path):
    missing = PromptHistory(tmp_path / "gone")
    assert missing.load() == []
    assert missing.append("lost") is False
    (tmp_path / HISTORY_FILE).mkdir()  # not a file
    blocked = PromptHistory(tmp_path)
    assert blocked.load() == []
    assert blocked.append("lost") is False
