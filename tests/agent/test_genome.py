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
