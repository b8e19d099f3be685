"""The session as a conversation: follow-ups in the same context and workspace, questions
answered without a change, /ask, resume, and the pending change after accept or reject.
A real git repo, the real sandbox, the scripted model through real litellm."""

from __future__ import annotations

import pytest
import test_fix_e2e
from evoagent.agent.approval import ApprovalMode
from evoagent.agent.events import TestResult
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply
from evoagent.agent.session import Session
from genome_settings import configure_genome
from test_fix_e2e import BUGGY, CALC, call, edit, finish, snapshot
from test_session import FIXED, REQUEST, Recorder

project = test_fix_e2e.project

DOUBLE = "def double(x):\n    return x * 2\n"
DOUBLE_NONE = "def double(x):\n    if x is None:\n        return 0\n    return x * 2\n"
FOLLOW_UP = "now also make double(None) return 0"


def open_session(project, model: str, emit=None) -> Session:
    return Session.open(RepoContext.open(project.path), model, ApprovalMode.FULL_AUTO,
                        emit or Recorder())


def said(messages: list[dict], text: str) -> bool:
    return any(text in str(m.get("content") or "") for m in messages)


def test_a_follow_up_continues_the_context_and_the_pending_change_grows(project, script):
    seen: list[list[dict]] = []

    def double_none(messages, tools):
        seen.append(list(messages))
        return edit(DOUBLE, DOUBLE_NONE)

    session = open_session(project, script([
        edit(BUGGY, FIXED), finish("return high"), double_none, finish("double(None) is 0"),
    ]))
    first = session.ask(REQUEST)
    second = session.ask(FOLLOW_UP)

    assert first.status == second.status == "fixed"
    assert first.conversation_id == second.conversation_id
    [messages] = seen
    # The follow-up's model call has the first request and its tool calls before it.
    assert said(messages, REQUEST) and said(messages, FOLLOW_UP)
    assert any(m.get("role") == "tool" for m in messages)
    assert "+        return high\n" in second.patch  # the first change is still pending
    assert "+    if x is None:\n" in second.patch
    assert [f.path for f in second.files] == ["calc.py"]
    assert second.report["turn"] == 2


def test_a_question_is_answered_without_a_change_tests_or_review(project, script):
    emit = Recorder()
    before = snapshot(project.path)
    session = open_session(project, script([
        call("read", path="calc.py"),
        ScriptedReply(text="clamp returns low when value is below low, else value or low."),
    ]), emit)

    outcome = session.ask("how does clamp treat values above the range?")

    assert outcome.status == "answered" and outcome.patch == "" and outcome.files == []
    assert outcome.answer.startswith("clamp returns low")
    assert not emit.of(TestResult)  # nothing changed: nothing to test
    assert snapshot(project.path) == before


def test_ask_offers_only_reading_tools_and_refuses_an_edit(project, script):
    offered: list[list[str]] = []

    def try_to_edit(messages, tools):
        offered.append(sorted(t["function"]["name"] for t in tools or []))
        return edit(BUGGY, FIXED)

    session = open_session(project, script([
        try_to_edit, ScriptedReply(text="It returns low; the second branch is the bug."),
    ]))
    outcome = session.ask("why does clamp(15, 0, 10) give 0?", read_only=True)

    assert outcome.status == "answered" and outcome.patch == ""
    assert "edit" not in offered[0] and "run" not in offered[0] and "read" in offered[0]
    assert (project.path / "calc.py").read_text() == CALC
    record = (outcome.run_dir / "trajectory.jsonl").read_text()
    assert "edit is not available here" in record


def test_a_saved_conversation_resumes_with_its_messages_and_pending_change(project, script):
    seen: list[list[dict]] = []

    def answer(messages, tools):
        seen.append(list(messages))
        return ScriptedReply(text="I changed the second branch to return high.")

    model = script([edit(BUGGY, FIXED), finish("return high"), answer])
    first = open_session(project, model)
    outcome = first.ask(REQUEST)
    first.close()
    assert not any((project.path / ".evoagent" / "sandboxes").glob("*/tree"))

    again = open_session(project, model)
    saved = again.resume_conversation()
    assert saved.id == outcome.conversation_id
    assert [t.request for t in saved.turns] == [REQUEST]
    answered = again.ask("what did you change?")

    assert answered.status == "answered"
    assert "+        return high\n" in answered.patch  # rebuilt from the saved patch
    assert said(seen[0], REQUEST) and said(seen[0], "what did you change?")
    assert [c.id for c in again.conversations.list()][0] == outcome.conversation_id
    with pytest.raises(Exception, match="matches none"):
        again.resume_conversation("nosuchid")


def test_after_accept_the_next_review_shows_only_what_came_after(project, script):
    # The second change breaks nothing and brings no test: not refined, still proposed.
    configure_genome(project.path, require_reproduction="false")
    session = open_session(project, script([
        edit(BUGGY, FIXED), finish(), edit(DOUBLE, DOUBLE_NONE), finish(),
    ]))
    first = session.ask(REQUEST)
    session.accept(first.run_id)
    second = session.ask(FOLLOW_UP)

    assert "return high" not in second.patch and "+    if x is None:\n" in second.patch
    session.accept(second.run_id)  # applies cleanly on top of the first
    assert (project.path / "calc.py").read_text() == \
        CALC.replace(BUGGY, FIXED).replace(DOUBLE, DOUBLE_NONE)


def test_a_rejected_change_leaves_the_conversation_without_it(project, script):
    seen: list[list[dict]] = []

    def answer(messages, tools):
        seen.append(list(messages))
        return ScriptedReply(text="Understood.")

    session = open_session(project, script([edit(BUGGY, FIXED), finish(), answer]))
    first = session.ask(REQUEST)
    session.discard(first.run_id)
    outcome = session.ask("ok, leave it then")

    assert outcome.status == "answered" and outcome.patch == ""
    assert said(seen[0], "the person rejected your change")
    assert (project.path / "calc.py").read_text() == CALC


def test_a_model_failure_mid_turn_keeps_the_attempt_pending_and_saved(project, script):
    # The script ends after the edit: the next call fails for good (not retried).
    session = open_session(project, script([edit(BUGGY, FIXED)]))
    outcome = session.ask(REQUEST)

    assert outcome.status == "error" and "exhausted" in outcome.report["error"]
    assert "+        return high\n" in outcome.patch  # the best attempt, still pending
    [saved] = session.conversations.list()
    assert saved.pending == outcome.patch and saved.turns[-1].status == "error"
    session.accept(outcome.run_id)  # and it can still be accepted
    assert (project.path / "calc.py").read_text() == CALC.replace(BUGGY, FIXED)
