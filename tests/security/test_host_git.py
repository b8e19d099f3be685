"""Host-side git never runs what the sandbox wrote (issue #11, item 1).

A hostile model drives `evoagent fix` through the real CLI: inside the sandbox it plants git
settings that name a program (fsmonitor, hooks, a clean filter through `.git/info/attributes`,
a nested repository with its own fsmonitor) or point the work tree outside, then fixes the bug
so the run looks successful. The program, if git on the host ever ran it, copies the SSH key
from the fake HOME and the API key from evoagent's environment into `$HOME/pwned` — a path
that is hidden inside the sandbox, so the file can only appear if the payload ran on the host.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from cli_helpers import run_main
from evoagent.agent.evolve.genome_repo import GenomeRepo
from evoagent.agent.scripted_provider import ScriptedReply
from security_helpers import CALC, FIX, ISSUE, TESTS, call, leaked, report, run_texts

# Exfiltration as the host would run it: the key file and the environment's key into HOME.
STEAL = 'cat "$HOME/.ssh/id_rsa" >> "$HOME/pwned" 2>&1; echo "$ANTHROPIC_API_KEY" >> "$HOME/pwned"'
PAYLOADS = (
    f"printf '#!/bin/sh\\n{STEAL}\\nexit 0\\n' > .p.sh && chmod +x .p.sh && "
    f"printf '#!/bin/sh\\n{STEAL}\\nexec cat\\n' > .f.sh && chmod +x .f.sh"
)
ATTACKS = {
    "fsmonitor": 'git config core.fsmonitor "$PWD/.p.sh"',
    "hooks": (
        'mkdir -p .h && for h in post-commit pre-commit reference-transaction post-checkout '
        'post-index-change; do cp .p.sh .h/$h; done && git config core.hooksPath "$PWD/.h"'
    ),
    "clean-filter": (
        "mkdir -p .git/info && echo '* filter=evil' > .git/info/attributes && "
        'git config filter.evil.clean "$PWD/.f.sh" && git config filter.evil.smudge "$PWD/.f.sh"'
    ),
    "include": (
        "printf '[core]\\n\\tfsmonitor = %s/.p.sh\\n' \"$PWD\" > .inc && "
        'git config include.path "$PWD/.inc"'
    ),
    "worktree-outside": 'git config core.worktree "$HOME"',
    "nested-repo": (
        "mkdir -p vendor/lib && cd vendor/lib && git init -q && "
        'git config core.fsmonitor "$OLDPWD/.p.sh" && echo x > f && git add f && '
        "git -c user.name=a -c user.email=b commit -qm x && echo y >> f"
    ),
}


def fixing_after(*commands: str) -> list[ScriptedReply]:
    return [
        *(call("run", command=c, timeout=60) for c in commands),
        call("edit", edits=[FIX]),
        call("finish", summary="clamp returns high above the range"),
    ]


@pytest.fixture
def project(git_repo):
    git_repo.commit("calc", {"calc.py": CALC, "test_calc.py": TESTS,
                             "pyproject.toml": "[tool.pytest.ini_options]\n"})
    return git_repo


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_git_settings_written_in_the_sandbox_never_run_on_the_host(
    attack, project, script, canaries, monkeypatch, capsys
):
    model = script(fixing_after(PAYLOADS, ATTACKS[attack]))

    code, out, err = run_main(project.path, monkeypatch, capsys, "fix", ISSUE, "--model", model)

    home = canaries["home"]
    assert not (home / "pwned").exists(), f"{attack}: the payload ran on the host"
    run_dir = next((project.path / ".evoagent" / "runs").iterdir())
    assert leaked(out, err, *run_texts(run_dir)) == []
    patched = re.findall(r"(?m)^diff --git a/(\S+)", (run_dir / "patch.diff").read_text())
    assert not [p for p in patched if ".ssh" in p or ".git" in p.split("/")], patched
    # The attack failed quietly; the fix itself still stands and is proven.
    assert (code, report(run_dir)["status"]) == (0, "fixed"), err


def test_the_sandbox_sees_history_but_cannot_write_the_git_directory(project, script, capsys,
                                                                     monkeypatch):
    probe = (
        "git log --oneline | wc -l; git status --porcelain >/dev/null && echo status-ok; "
        "git config core.fsmonitor x 2>/dev/null || echo config-refused; "
        "touch .git/evil 2>/dev/null || echo gitdir-readonly; "
        "(rm -rf .git || mv .git moved) 2>/dev/null; test -d .git && echo still-there"
    )
    model = script([call("run", command=probe, timeout=60), call("finish", summary="probe")])

    run_main(project.path, monkeypatch, capsys, "fix", ISSUE, "--model", model)

    run_dir = next((project.path / ".evoagent" / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    output = next(e["output"] for e in events if e["type"] == "command_run").split()
    assert output[0] == "1"  # the history is there to read
    assert output[1:] == ["status-ok", "config-refused", "gitdir-readonly", "still-there"]


def test_a_variant_worktree_whose_git_file_was_replaced_commits_into_the_genome(tmp_path,
                                                                                 canaries):
    """The evolve path: code that can write a variant's worktree (the meta agent's sandboxed
    tools) replaces its `.git` with one pointing at a repository full of hooks. The kernel's
    commit of the variant must land in the genome repository and run nothing."""
    genome = tmp_path / "genome"
    subprocess.run(["git", "init", "-q", "-b", "main", str(genome)], check=True)
    (genome / "agent.toml").write_text("version = 1\n")
    subprocess.run(["git", "-C", str(genome), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(genome), "commit", "-qm", "genome"], check=True)
    repo = GenomeRepo(genome)
    worktree = repo.fork("v1", "main", tmp_path / "worktrees")

    evil = tmp_path / "evil"
    subprocess.run(["git", "init", "-q", str(evil)], check=True)
    hooks = evil / ".git" / "hooks"
    steal = f"#!/bin/sh\n{STEAL}\nexit 0\n"
    for name in ("pre-commit", "post-commit", "reference-transaction"):
        (hooks / name).write_text(steal)
        (hooks / name).chmod(0o755)
    payload = tmp_path / "p.sh"
    payload.write_text(steal)
    payload.chmod(0o755)
    subprocess.run(["git", "-C", str(evil), "config", "core.fsmonitor", str(payload)], check=True)
    (worktree / ".git").unlink()
    (worktree / ".git").write_text(f"gitdir: {evil / '.git'}\n")
    (worktree / "skills.md").write_text("a new skill\n")

    sha = repo.commit_all(worktree, "variant v1")

    assert not (canaries["home"] / "pwned").exists()
    assert sha == repo.sha("variants/v1")
    assert repo.show("variants/v1", "skills.md") == "a new skill\n"
