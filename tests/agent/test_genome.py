"""The genome: the packaged template loads, renders strictly, and broken genomes fail in one line."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from evoagent.agent.genome import (
    PROMPTS,
    Genome,
    GenomeError,
    Policy,
    init_genome,
    template_dir,
)
from evoagent.agent.tools import TOOLS


@pytest.fixture
def genome_dir(tmp_path):
    dest = tmp_path / "genome"
    shutil.copytree(template_dir(), dest)
    return dest


def test_template_loads_with_typed_settings():
    genome = Genome.load(template_dir())
    assert genome.settings.version == 2
    assert genome.settings.loop.max_steps >= 1
    assert genome.settings.loop.require_reproduction is True
    assert set(genome.tools) <= set(TOOLS) | set(genome.code_tools)
    assert "finish" in genome.tools and "edit" in genome.tools
    assert genome.policy.network is False
    assert {"reproduce-first", "debug-failing-test"} <= set(genome.skills)
    skill = genome.skills["reproduce-first"]
    assert skill.description and "---" not in skill.text
    assert skill.text.startswith("# Reproduce first")


def test_every_prompt_renders_with_its_documented_variables():
    genome = Genome.load(template_dir())
    samples = {
        "system": dict(
            tools=[{"name": "read", "description": "Read a file."}], tool_protocol="",
            project_instructions="Run make test.", skills=genome.skills_index(), repo_map="",
        ),
        "task": dict(
            issue="Crash on empty input",
            locate_hits={"files": [{"path": "app.py", "score": 1.0, "why": ["trace"]}], "symbols": []},
            recall_hits=[{"sha": "0123456789abcdef", "subject": "Fix parser", "files": ["p.py"]}],
            require_reproduction=True, test_command="pytest",
        ),
        "refine": dict(attempt=1, max_attempts=2, situation="failing", digest="FAILED t::x",
                       diff_since_last=""),
        "commit_message": dict(issue="Crash", diff_stat=" app.py | 2 +-"),
    }
    assert set(samples) == set(PROMPTS)
    rendered = {name: genome.render(name, **variables) for name, variables in samples.items()}
    assert "Run make test." in rendered["system"]
    assert "reproduce-first" in rendered["system"]
    assert "evidence" in rendered["system"] and "weaken" in rendered["system"]
    assert "- app.py (trace)" in rendered["task"]
    assert "0123456789 Fix parser" in rendered["task"]
    assert "FAILED t::x" in rendered["refine"]


def test_missing_variable_is_a_render_error_naming_the_file():
    genome = Genome.load(template_dir())
    with pytest.raises(GenomeError) as err:
        genome.render("commit_message", issue="x")
    assert err.value.message.startswith(f"{template_dir() / 'prompts/commit_message.j2'}: render error")
    assert "'diff_stat' is undefined" in err.value.message
    assert "\n" not in err.value.message


def _break(genome_dir, rel, text):
    (genome_dir / rel).write_text(text)


@pytest.mark.parametrize(
    ("rel", "text", "problem"),
    [
        ("agent.toml", "version = 1\n[loop\nmax_steps = 3\n", "invalid TOML"),
        ("agent.toml", "version = 3\n", "unsupported genome version 3 (supported: 1, 2)"),
        ("agent.toml", "[loop]\nmax_steps = 3\n", "missing 'version'"),
        ("agent.toml", "version = 1\n[loop]\nmax_stepz = 3\n", "loop.max_stepz: Extra inputs"),
        ("agent.toml", "version = 1\n[loop]\nmax_steps = 0\n", "loop.max_steps: Input should be"),
        (
            "agent.toml",
            'version = 1\n[tools]\nenabled = ["read", "telepathy"]\n',
            "[tools] enabled: unknown tool 'telepathy' (known: edit, finish,",
        ),
        ("policy.toml", 'tools = ["rm_rf"]\n', "tools: unknown tool 'rm_rf'"),
        ("prompts/task.j2", "{{ issue }\n", "template syntax error at line 1"),
        ("prompts/refine.j2", "ok\n{% if attempt %}\nno end\n", "syntax error at line 2: Unexpected end"),
        ("prompts/refine.j2", "{{ attempt }} {{ secret }}", "unknown variable 'secret' (available:"),
        ("meta/propose.j2", "{% for %}", "template syntax error at line 1"),
        ("skills/reproduce-first.md", "# no front matter\n", "missing front matter"),
    ],
)
def test_broken_genome_fails_with_one_line_naming_the_file(genome_dir, rel, text, problem):
    _break(genome_dir, rel, text)
    with pytest.raises(GenomeError) as err:
        Genome.load(genome_dir)
    message = err.value.message
    assert message.startswith(f"{genome_dir / rel}: ")
    assert problem in message
    assert "\n" not in message


def test_invalid_toml_names_the_line(genome_dir):
    _break(genome_dir, "agent.toml", "version = 1\n\n[loop]\nmax_steps = = 3\n")
    with pytest.raises(GenomeError, match=r"agent.toml: invalid TOML: .*line 4"):
        Genome.load(genome_dir)


@pytest.mark.parametrize("rel", ["prompts/system.j2", "agent.toml", "policy.toml"])
def test_missing_file_is_named(genome_dir, rel):
    (genome_dir / rel).unlink()
    with pytest.raises(GenomeError) as err:
        Genome.load(genome_dir)
    assert err.value.message.startswith(f"{genome_dir / rel}: missing")


def test_policy_filters_enabled_tools(genome_dir):
    policy = (genome_dir / "policy.toml").read_text().replace('"run", ', "")
    _break(genome_dir, "policy.toml", policy)
    genome = Genome.load(genome_dir)
    assert "run" in genome.settings.tools.enabled
    assert "run" not in genome.tools


def test_policy_write_globs_and_loosenings():
    policy = Policy(tools=["read"], writable=["src/**", "*.md"], protected=["src/vendor/**"])
    assert policy.allows_write("src/a/b.py")
    assert policy.allows_write("./README.md")
    assert not policy.allows_write("docs/x.md")
    assert not policy.allows_write("src/vendor/lib.py")
    tighter = Policy(tools=[], writable=["src/**"], protected=["src/vendor/**", "src/gen/**"])
    assert policy.loosenings(tighter) == []
    looser = Policy(tools=["read", "run"], network=True, writable=["**"], protected=[])
    assert policy.loosenings(looser) == [
        "tool 'run' added", "network turned on", "writable '**' added",
        "protected 'src/vendor/**' removed",
    ]


def _git(path, *args):
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_init_genome_creates_a_repo_on_main_with_one_commit(tmp_path):
    dest = tmp_path / ".evoagent" / "agent"
    assert init_genome(dest) is True
    assert _git(dest, "branch", "--show-current") == "main"
    assert _git(dest, "rev-list", "--count", "HEAD") == "1"
    assert _git(dest, "log", "-1", "--format=%an <%ae>|%cn") == "evoagent <evoagent@localhost>|evoagent"
    assert _git(dest, "status", "--porcelain") == ""
    assert "prompts/system.j2" in _git(dest, "ls-files").splitlines()
    assert not list((dest / ".git" / "hooks").glob("*"))
    Genome.load(dest)


def test_init_genome_is_idempotent_and_keeps_edits(tmp_path):
    dest = tmp_path / "agent"
    init_genome(dest)
    head = _git(dest, "rev-parse", "HEAD")
    (dest / "skills" / "mine.md").write_text("---\ndescription: mine\n---\nbody\n")
    assert init_genome(dest) is False
    assert _git(dest, "rev-parse", "HEAD") == head
    assert (dest / "skills" / "mine.md").exists()


def test_a_genome_made_before_a_later_prompt_renders_the_templates(genome_dir):
    """`turn` and `compact` came after genomes existed: a genome without them renders the
    packaged template's text; a prompt every genome must have is still an error."""
    from evoagent.agent.genome import render_template_prompt

    for rel in ("prompts/turn.j2", "prompts/compact.j2"):
        (genome_dir / rel).unlink()
    genome = Genome.load(genome_dir)
    turn = dict(request="why?", read_only=True, locate_hits={"files": []}, recall_hits=[],
                pending_files=[], test_command="")
    assert not genome.has_prompt("turn")
    assert genome.render("turn", **turn) == render_template_prompt("turn", **turn)
    assert "<request>\nwhy?\n</request>" in genome.render("turn", **turn)
    assert "<transcript>\nT\n</transcript>" in genome.render("compact", transcript="T")
    (genome_dir / "prompts/refine.j2").unlink()
    with pytest.raises(GenomeError, match="missing"):
        Genome.load(genome_dir)


# -- MCP servers in the policy and the settings ----------------------------------------------


def test_a_policy_with_only_mcp_allows_every_server_and_the_template_says_so(genome_dir):
    old = Policy(mcp=True)  # a policy.toml written before the per-server lists
    assert (old.mcp_servers, old.mcp_network) == (["*"], [])
    assert old.allows_mcp_server("docs") and not old.mcp_server_network("docs")
    assert not Policy(mcp=False).allows_mcp_server("docs")  # the master switch
    template = Genome.load(genome_dir).policy
    assert (template.mcp, template.mcp_servers, template.mcp_network) == (True, ["*"], [])


def test_per_server_lists_choose_who_runs_and_who_keeps_the_network(genome_dir):
    policy_toml = (genome_dir / "policy.toml").read_text()
    _break(genome_dir, "policy.toml", policy_toml.replace('mcp_servers = ["*"]',
                                                          'mcp_servers = ["docs", "files"]')
           .replace("mcp_network = []", 'mcp_network = ["docs"]'))
    policy = Genome.load(genome_dir).policy
    assert [policy.allows_mcp_server(n) for n in ("docs", "files", "other")] == [True, True, False]
    assert [policy.mcp_server_network(n) for n in ("docs", "files")] == [True, False]
    assert Policy(network=True, mcp_network=[]).mcp_server_network("files")  # follows network


@pytest.mark.parametrize(("rel", "text", "problem"), [
    ("policy.toml", 'mcp_servers = ["a__b"]\n', "mcp_servers: Value error, 'a__b' is not an MCP "
                                                "server name"),
    ("policy.toml", 'mcp_network = ["*", ""]\n', "mcp_network: Value error, '' is not an MCP"),
    ("agent.toml", 'version = 2\n[tools]\nmcp_disabled = ["docs__"]\n',
     "tools.mcp_disabled: Value error, 'docs__' is neither an MCP server name nor server__tool"),
])
def test_bad_mcp_names_fail_in_one_line(genome_dir, rel, text, problem):
    _break(genome_dir, rel, text)
    with pytest.raises(GenomeError) as err:
        Genome.load(genome_dir)
    assert problem in err.value.message and "\n" not in err.value.message


def test_allowing_a_server_or_its_network_is_a_loosening_and_removing_one_is_not():
    parent = Policy(mcp=True, mcp_servers=["docs"], mcp_network=["docs"])
    child = Policy(mcp=True, mcp_servers=["docs", "files", "*"], mcp_network=["docs", "files"])
    assert parent.loosenings(child) == [
        "MCP server 'files' allowed", "every MCP server ('*') allowed",
        "network for MCP server 'files' added"]
    assert child.loosenings(parent) == []
    assert Policy(mcp=True).loosenings(Policy(mcp=True, mcp_servers=["files"])) == []  # "*" had it
    assert Policy(mcp=True).loosenings(Policy(mcp=True, mcp_network=["*"])) == [
        "network for every MCP server ('*') added"]


def test_the_genome_may_disable_a_server_or_one_of_its_tools(genome_dir):
    agent_toml = (genome_dir / "agent.toml").read_text()
    _break(genome_dir, "agent.toml", agent_toml.replace(
        "[tools]\n", '[tools]\nmcp_disabled = ["docs", "files__delete"]\n'))
    tools = Genome.load(genome_dir).settings.tools
    assert [tools.uses_mcp(n) for n in ("docs", "docs__search", "files", "files__delete",
                                        "files__read", "files_x__delete")] == [
        False, False, True, False, True, True]


def test_the_evolve_policy_gate_rejects_a_variant_that_allows_an_mcp_server(genome_dir):
    from evoagent.agent.evolve.gates import policy_gate

    parent = (genome_dir / "policy.toml").read_text().replace('mcp_servers = ["*"]',
                                                              'mcp_servers = ["docs"]')
    _break(genome_dir, "policy.toml", parent.replace('["docs"]', '["docs", "files"]'))
    looser = policy_gate(parent, genome_dir)
    assert not looser.passed
    assert looser.detail == "policy.toml loosened: MCP server 'files' allowed"
    _break(genome_dir, "policy.toml", parent.replace('["docs"]', "[]"))
    assert policy_gate(parent, genome_dir).passed  # allowing fewer is a tightening
