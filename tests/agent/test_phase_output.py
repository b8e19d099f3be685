"""A talkative start: `Phase` events as one text line each and as JSON in stream-json, through
the real `evoagent fix` on a scripted model; and the background warm-up of litellm and
LanceDB (idempotent, quiet when an import fails)."""

from __future__ import annotations

import json
import os
import threading

import pytest
from cli_helpers import invoke
from evoagent.agent import fix as fix_module
from evoagent.agent import warmup
from evoagent.agent.cli.agent_cmds import _printer, phase_line
from evoagent.agent.events import Phase
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

ISSUE = "Crash on empty input"
INJECTED = [Phase("workspace", "ready (0.4 s)"), Phase("baseline_tests", "12 passed, 1 failed"),
            Phase("locating"), Phase("model_call")]


# -- the printer ------------------------------------------------------------------------


@pytest.mark.parametrize("event, line", [
    (Phase("workspace", "ready (0.4 s)"), "· workspace: ready (0.4 s)"),
    (Phase("baseline_tests", "12 passed, 1 failed"), "· baseline tests: 12 passed, 1 failed"),
    (Phase("locating"), "· locating"),
    (Phase("model_call"), "· calling the model"),
    (Phase("model_check", "openai/x (key from OPENAI_API_KEY)"),
     "· model: openai/x (key from OPENAI_API_KEY)"),
    (Phase("indexing_code", "  "), "· indexing code"),
    (Phase("locating", "calc.py\n\x1b[2Jnotes.py"), "· locating: calc.py notes.py"),
])
def test_a_phase_is_one_text_line(event, line, capsys):
    _printer("text")(event)
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_phase_line_bounds_a_long_detail():
    assert len(phase_line("locating", "x" * 1000)) < 230


def test_stream_json_prints_a_phase_as_its_json(capsys):
    _printer("stream-json")(Phase("baseline_tests", "3 passed", at=1.5))
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == {"type": "phase", "name": "baseline_tests", "detail": "3 passed",
                               "at": 1.5}


# -- through `evoagent fix` -------------------------------------------------------------


@pytest.fixture
def testless(git_repo):
    git_repo.commit("Start", {"README.md": "# notes\n"})
    return git_repo


@pytest.fixture
def with_phases(monkeypatch):
    """run_request also emitting the setup phases first (outer wiring: what the run emits
    is fix.py's business; this tests how `fix` shows them)."""
    real = fix_module.run_request

    def run_request(ctx, request, model, emit, controls=None):
        for event in INJECTED:
            emit(event)
        return real(ctx, request, model, emit, controls)

    monkeypatch.setattr(fix_module, "run_request", run_request)


def finish_script(script) -> str:
    return script([ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "ok"})])])


def test_fix_shows_each_phase_as_a_line(testless, script, with_phases):
    result = invoke(testless.path, "fix", "--model", finish_script(script), ISSUE)
    assert result.exit_code == 1, result.stderr  # testless: nothing can be proven
    lines = result.stderr.splitlines()
    for expected in ("· workspace: ready (0.4 s)", "· baseline tests: 12 passed, 1 failed",
                     "· locating", "· calling the model"):
        assert expected in lines, result.stderr
    assert not any(line.startswith("·") for line in result.stdout.splitlines())


def test_a_fix_run_says_what_it_is_doing_before_the_model_answers(testless, script):
    """No injection: the phases the run itself emits, in order, before the first tool call."""
    result = invoke(testless.path, "fix", "--model", finish_script(script), ISSUE)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    labels = [line.split(":")[0] for line in lines[:lines.index("→ finish {\"summary\": \"ok\"}")]
              if line.startswith("· ")]
    expected = ["· workspace", "· baseline tests", "· calling the model"]
    assert [label for label in labels if label in expected] == expected, result.stderr


def test_fix_stream_json_includes_the_phases(testless, script, with_phases):
    result = invoke(testless.path, "fix", "--model", finish_script(script),
                    "--output-format", "stream-json", ISSUE)
    assert result.exit_code == 1, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    phases = [(e["name"], e["detail"]) for e in events if e["type"] == "phase"]
    for event in INJECTED:
        assert (event.name, event.detail) in phases
    assert events[-1]["type"] == "finished"


# -- warm-up ----------------------------------------------------------------------------


@pytest.fixture
def fresh_warmup(monkeypatch):
    """The module's once-per-process state, reset for one test."""
    monkeypatch.setattr(warmup, "_thread", None)
    monkeypatch.setattr(warmup, "_done", threading.Event())
    monkeypatch.setattr(warmup, "failures", {})
    return warmup


def test_warmup_starts_once_and_survives_a_failing_import(fresh_warmup, monkeypatch):
    monkeypatch.setattr(warmup, "MODULES", ("json", "evoagent_no_such_module"))
    assert fresh_warmup.wait_warm(0) is False  # nothing started yet
    fresh_warmup.start_warmup()
    first = fresh_warmup._thread
    fresh_warmup.start_warmup()
    assert fresh_warmup._thread is first
    assert fresh_warmup.wait_warm(30) is True
    assert list(fresh_warmup.failures) == ["evoagent_no_such_module"]
    assert fresh_warmup.failures["evoagent_no_such_module"].startswith("ModuleNotFoundError")
    assert first.daemon and not first.is_alive()


def test_warmup_sets_the_local_cost_map_when_unset(fresh_warmup, monkeypatch):
    monkeypatch.setattr(warmup, "MODULES", ())
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    fresh_warmup.start_warmup()
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert fresh_warmup.wait_warm(30)


def test_warmup_keeps_a_cost_map_setting_the_person_made(fresh_warmup, monkeypatch):
    monkeypatch.setattr(warmup, "MODULES", ())
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "False")
    fresh_warmup.start_warmup()
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "False"
    assert fresh_warmup.wait_warm(30)
