"""What the agent is given to start with: the repo map in its system prompt, and the
repo_map tool, both built from the real code index."""

from __future__ import annotations

from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall
from test_fix_e2e import ISSUE, project  # noqa: F401  (project is a fixture)


def test_system_prompt_and_repo_map_tool_show_the_code(project, script):  # noqa: F811
    seen: dict[str, str] = {}

    def ask_for_the_map(messages, tools):
        seen["system"] = messages[0]["content"]
        return ScriptedReply(tool_calls=[ScriptedToolCall("repo_map", {"budget": 500})])

    def finish(messages, tools):
        seen.setdefault("tool", messages[-1]["content"])  # the repo_map result
        return ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "looked"})])

    model = script([ask_for_the_map, finish, finish, finish])
    run_fix(RepoContext.open(project.path), FixOptions(ISSUE, model))
    for text in (seen["system"], seen["tool"]):
        assert "calc.py" in text
        assert "def clamp(value, low, high):" in text
