"""The meta agent: the parent's meta/ prompts drive it, its tools reach only the variant's
worktree, and the genome may give it Python tools of its own (meta/tools/, run in the
sandbox)."""

from __future__ import annotations

from evoagent.agent.evolve.meta_agent import propose
from evoagent.agent.genome import init_genome
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

COUNT_TOOL = '''SCHEMA = {
    "name": "count_skills",
    "description": "How many skills the genome has.",
    "parameters": {"type": "object", "properties": {}},
}


def run(args, workspace):
    import os

    return {"skills": len(os.listdir(os.path.join(workspace, "skills")))}
'''


def call(name, **arguments):
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def test_the_meta_agent_uses_its_genome_prompts_and_its_own_sandboxed_tools(tmp_path, script):
    genome = tmp_path / "genome"
    init_genome(genome)
    (genome / "meta" / "tools").mkdir()
    (genome / "meta" / "tools" / "count_skills.py").write_text(COUNT_TOOL)
    (genome / "meta" / "propose.j2").write_text(
        (genome / "meta" / "propose.j2").read_text().replace("Your job:", "CUSTOM-META-PROMPT\nYour job:"))
    seen = []

    def count(messages, tools):
        seen.append((messages[1]["content"], [t["function"]["name"] for t in tools or []]))
        return call("count_skills")

    def write(messages, tools):
        seen.append(messages[-1]["content"])
        return call("write", path="skills/new.md", content="---\ndescription: new\n---\n# New\n")

    model = script([count, write, call("finish", summary="Diagnosis: x\nChange: a skill.")])
    proposal = propose(genome, model, {"parent_id": "main", "scores": "-", "failures": "-",
                                       "archive": "-"})
    prompt, tool_names = seen[0]
    assert "CUSTOM-META-PROMPT" in prompt, prompt
    assert "forked from\nmain" in prompt
    assert "count_skills" in tool_names and "run" not in tool_names
    assert '"skills": 3' in seen[1]  # the template's three skills, counted in the sandbox
    assert proposal.finished and proposal.text.startswith("Diagnosis")
    assert (genome / "skills" / "new.md").is_file()


def test_the_meta_agent_cannot_write_outside_the_worktree_or_into_git(tmp_path, script):
    genome = tmp_path / "genome"
    init_genome(genome)
    outside = tmp_path / "outside.txt"
    model = script([
        call("write", path="../outside.txt", content="x"),
        call("write", path=".git/hooks/post-commit", content="x"),
        call("finish", summary="done"),
    ])
    propose(genome, model, {"parent_id": "main", "scores": "-", "failures": "-", "archive": "-"})
    assert not outside.exists()
    assert not (genome / ".git" / "hooks" / "post-commit").exists()
