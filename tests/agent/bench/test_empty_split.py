"""`evoagent bench` on a split with no tasks: one line saying where the tasks are, exit 2,
before a model is chosen or a run is recorded. Tasks are mined for real from a small history
and moved between splits with `tasks mine --ratios`, as a person would."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_main
from split_history import build, mine


@pytest.fixture
def no_model(monkeypatch):
    """No key and no Ollama: choosing a model would be exit 3, so exit 2 shows the split
    was checked first."""
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens there


def bench_runs(repo: Path) -> list[Path]:
    runs = repo / ".evoagent" / "bench"
    return [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []


def test_an_empty_split_says_which_splits_have_tasks(git_repo, monkeypatch, capsys, no_model):
    build(git_repo, fixes=1)
    mine(git_repo.path, monkeypatch, capsys, "1,0,0")  # the task in train
    for args in ([], ["--split", "test", "--json"]):
        code, out, err = run_main(git_repo.path, monkeypatch, capsys, "bench", *args)
        split = "test" if args else "val"
        other = "val" if args else "test"
        assert (code, out) == (2, "")
        assert err == (f"evoagent: no tasks in split '{split}'; train has 1, {other} has 0"
                       " — try --split train\n")
    mine(git_repo.path, monkeypatch, capsys, "0,0,1")  # the same task, now in test
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "bench", "--split", "train")
    assert code == 2
    assert err == "evoagent: no tasks in split 'train'; val has 0, test has 1 — try --split test\n"
    assert bench_runs(git_repo.path) == []


def test_no_tasks_at_all_says_how_to_get_some(git_repo, monkeypatch, capsys, no_model):
    build(git_repo, fixes=0)
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, "bench")
    assert (code, out) == (2, "")
    assert err == ("evoagent: no tasks in split 'val' nor in any other — mine some with "
                   "`evoagent tasks mine`\n")
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "bench", "--split", "all")
    assert (code, err) == (2, "evoagent: no tasks yet — mine some with `evoagent tasks mine`\n")
    assert bench_runs(git_repo.path) == []
