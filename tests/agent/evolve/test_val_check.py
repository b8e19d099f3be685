"""`evoagent evolve run` without tasks in a split it needs (val scores every variant, train's
failures feed the meta agent) stops at once: one line naming what each split holds and what
to do, exit 2, before main is scored, a variant proposed or any model called. Tasks are mined
for real from a small history; `tasks mine --ratios` moves them between splits."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_main
from split_history import build, mine

POLICY = '''
def respond(messages, tools):
    with open({log!r}, "a") as handle:
        handle.write("called\\n")
    return {{"tool_calls": [{{"name": "finish", "arguments": {{"summary": "done"}}}}]}}
'''
RESPLIT = "or change the split with `evoagent tasks mine --ratios TRAIN,VAL,TEST`"


@pytest.fixture
def evolve(git_repo, tmp_path, monkeypatch, capsys):
    """`evoagent evolve run` with scripted task and meta models that log every call."""
    logs = {}
    models = []
    for role in ("task", "meta"):
        logs[role] = tmp_path / f"{role}.log"
        policy = tmp_path / f"{role}_policy.py"
        policy.write_text(POLICY.format(log=str(logs[role])))
        models.append(f"scripted/{policy}")

    def run() -> tuple[int, str, str]:
        return run_main(git_repo.path, monkeypatch, capsys, "evolve", "run",
                        "--model", models[0], "--meta-model", models[1])

    run.logs = logs
    return run


def nothing_ran(repo: Path, logs: dict[str, Path]) -> None:
    assert not any(log.exists() for log in logs.values())  # no model was called
    assert not (repo / ".evoagent" / "bench").exists()  # main was not scored
    evolve_dir = repo / ".evoagent" / "evolve"
    assert not evolve_dir.exists() or not any(evolve_dir.rglob("*.json"))  # nothing archived


def test_no_val_or_no_train_is_one_line_before_any_work(git_repo, monkeypatch, capsys, evolve):
    build(git_repo, fixes=2)
    mine(git_repo.path, monkeypatch, capsys, "1,0,0")  # every task in train
    code, out, err = evolve()
    assert (code, out) == (2, "")
    assert err == ("evoagent: evolve needs tasks in train and val; train has 2, val has 0, "
                   f"test has 0 — mine more with `evoagent tasks mine`, {RESPLIT}\n")
    mine(git_repo.path, monkeypatch, capsys, "0,1,0")  # now every task in val
    code, _, err = evolve()
    assert code == 2
    assert "; train has 0, val has 2, test has 0 — " in err and err.count("\n") == 1
    nothing_ran(git_repo.path, evolve.logs)


def test_one_task_cannot_fill_both_splits(git_repo, monkeypatch, capsys, evolve):
    build(git_repo, fixes=1)
    mine(git_repo.path, monkeypatch, capsys, "0,1,0")
    code, _, err = evolve()
    assert code == 2
    assert err == ("evoagent: evolve needs tasks in train and val; train has 0, val has 1, "
                   "test has 0 — mine more with `evoagent tasks mine`\n")
    nothing_ran(git_repo.path, evolve.logs)


def test_no_tasks_at_all_says_mine_some(git_repo, monkeypatch, capsys, evolve):
    build(git_repo, fixes=0)
    code, _, err = evolve()
    assert code == 2
    assert err == ("evoagent: evolve needs tasks in train and val; train has 0, val has 0, "
                   "test has 0 — mine some with `evoagent tasks mine`\n")
    nothing_ran(git_repo.path, evolve.logs)
