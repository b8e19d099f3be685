"""The app as a conversation, driven by the scripted model in a real repository with the
real sandbox: a follow-up that builds on the pending change, a question answered without a
review, /ask, and a conversation resumed after quitting the app."""

from __future__ import annotations

from clamp_project import CALC
from conftest import BUGGY, FIXED, REQUEST, SIZE, call, fix_steps
from evoagent.agent.scripted_provider import ScriptedReply
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.review import ReviewScreen
from evoagent.tui.widgets.assistant_message import AssistantMessage
from evoagent.tui.widgets.conversation import UserRequest
from genome_settings import configure_genome
from helpers import wait_for
from small_context import BIG_MODULE, READ_BIG, small_context_model

CLAMP_LOW = "    if value < low:\n        return low\n"
CLAMP_LOW_NONE = "    if value is None or value < low:\n        return low\n"


async def send(pilot, text: str) -> None:
    pilot.app.main.prompt.value = text
    await pilot.press("enter")


def notes(app) -> str:
    return " ".join(str(n.render()) for n in app.main.query("Note"))


async def close_review(pilot) -> None:
    await pilot.press("escape")  # closes without deciding: the change stays pending
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ReviewScreen), what="close")


async def test_a_follow_up_builds_on_the_pending_change_and_a_question_opens_no_review(
        project, script):
    configure_genome(project.path, require_reproduction="false")
    follow_up = {"path": "calc.py", "search": CLAMP_LOW, "replace": CLAMP_LOW_NONE}
    app = EvoApp(root=project.path, model=script([
        *fix_steps(),
        call("edit", edits=[follow_up]), call("finish", summary="None is clamped to low"),
        ScriptedReply(text="Both branches now return the bound they test against."),
    ]), mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, REQUEST)
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review 1")
        await close_review(pilot)
        await wait_for(pilot, lambda: not app.status.busy, what="idle")
        await send(pilot, "also clamp None to low")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen)
                       and "value is None" in app.screen.request.diff, what="review 2")
        assert "+        return high" in app.screen.request.diff  # the first change too
        await close_review(pilot)
        await wait_for(pilot, lambda: not app.status.busy, what="idle")
        await send(pilot, "what did you change, in one sentence?")
        await wait_for(pilot, lambda: any("Both branches" in m.text
                                          for m in app.main.query(AssistantMessage)),
                       what="the answer")
        await wait_for(pilot, lambda: not app.status.busy, what="idle")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ReviewScreen)  # an answer is not a change
    assert (project.path / "calc.py").read_text() == CALC  # nothing was accepted


async def test_a_conversation_resumes_after_quitting_the_app(project, script):
    seen: list[list[dict]] = []

    def answer(messages, tools):
        seen.append(messages)
        return ScriptedReply(text="I made the upper branch return high.")

    model = script([*fix_steps(), answer])
    app = EvoApp(root=project.path, model=model, mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, REQUEST)
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        await close_review(pilot)
        await wait_for(pilot, lambda: not app.status.busy, what="idle")

    again = EvoApp(root=project.path, model=model, mode="full_auto", mine_on_start=False,
                   resume="")
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Resumed" in notes(again), what="resumed")
        await wait_for(pilot, lambda: any(REQUEST in str(r.render())
                                          for r in again.main.query(UserRequest)),
                       what="the saved request shown again")
        await send(pilot, "what did you change?")
        await wait_for(pilot, lambda: seen, what="the model call")
        await wait_for(pilot, lambda: not again.status.busy, what="idle")
    messages = seen[0]
    assert any(REQUEST in str(m.get("content")) for m in messages)
    assert any(FIXED.strip() in str(m.get("content") or m.get("tool_calls") or "")
               or "edit" in str(m.get("tool_calls") or "") for m in messages)
    assert (project.path / "calc.py").read_text() == CALC
    assert BUGGY  # the tree was never touched: the change is still only pending


async def test_compaction_shows_in_the_conversation_when_the_model_declares_a_small_context(
        project, script):
    """A scripted model whose window holds the prompt plus about three reads: reading a big
    module five times makes the kernel trim and summarize, and the app says so."""
    project.commit("Add a big module", BIG_MODULE)
    name, handle = small_context_model(
        script, [READ_BIG] * 5 + [ScriptedReply(text="The module is a table of constants.")],
        "The agent read big.py several times.")
    app = EvoApp(root=project.path, model=name, mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, "what is in big.py?")
        await wait_for(pilot, lambda: "context trimmed" in notes(app), what="a compaction note")
        await wait_for(pilot, lambda: not app.status.busy, what="idle")
    assert handle.refused == 0  # every request stayed inside the declared window
