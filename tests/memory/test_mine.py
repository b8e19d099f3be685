"""`mine()`: incremental, resumable, concurrent-safe mining into the real LanceDB store."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from evoagent.memory.gitlog import DIFF_UNAVAILABLE
from evoagent.memory.mine import MineError, mine
from evoagent.memory.records import FileChange, Memory
from evoagent.memory.store import MemoryStore


def history(repo, commits: int) -> list[str]:
    return [repo.commit(f"change {i}", {"f.py": f"x = {i}\n"}) for i in range(commits)]


def all_shas(repo) -> set[str]:
    return set(repo.git("rev-list", "HEAD").split())


@pytest.fixture
def store(tmp_path):
    return MemoryStore(tmp_path / "store")


def test_mine_stores_every_commit(git_repo, store):
    shas = history(git_repo, 3)
    seen = []
    result = mine(git_repo.path, store, progress=lambda done, total: seen.append((done, total)))
    assert (result.stored, result.skipped, result.total) == (3, 0, 3)
    assert not result.shallow and not result.empty
    assert store.known_shas() == set(shas)
    assert store.get(shas[1]).subject == "change 1"
    assert seen == [(0, 3), (3, 3)]


def test_second_run_stores_only_the_new_commit(git_repo, store):
    history(git_repo, 3)
    mine(git_repo.path, store)
    new = git_repo.commit("fourth", {"g.py": "y = 1\n"})
    result = mine(git_repo.path, store)
    assert (result.stored, result.skipped, result.total) == (1, 3, 4)
    assert store.count() == 4
    assert store.get(new).subject == "fourth"


def test_empty_repo(git_repo, store):
    result = mine(git_repo.path, store)
    assert result.empty
    assert (result.stored, result.total) == (0, 0)
    assert store.count() == 0


def test_not_a_repository(tmp_path, store):
    (tmp_path / "plain").mkdir()
    with pytest.raises(MineError):
        mine(tmp_path / "plain", store)


def test_shallow_clone(git_repo, make_repo, store, tmp_path):
    shas = history(git_repo, 5)
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{git_repo.path}", str(clone)], check=True
    )
    result = mine(clone, store)
    assert result.shallow
    assert result.stored == 2
    assert store.known_shas() == set(shas[-2:])


def test_detached_head(git_repo, store):
    shas = history(git_repo, 4)
    git_repo.git("checkout", "-q", "--detach", shas[1])
    result = mine(git_repo.path, store)
    assert result.stored == 2
    assert store.known_shas() == set(shas[:2])


def test_resume_after_interruption(git_repo, store):
    history(git_repo, 7)

    def interrupt(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mine(git_repo.path, store, progress=interrupt, batch_size=3)
    assert store.count() == 3  # the first batch survived, nothing half-written
    result = mine(git_repo.path, store, batch_size=3)
    assert (result.stored, result.skipped) == (4, 3)
    assert store.count() == 7
    assert store.known_shas() == all_shas(git_repo)


def test_two_concurrent_runs_store_each_commit_once(git_repo, tmp_path):
    history(git_repo, 25)
    uri = tmp_path / "shared-store"
    script = (
        "import sys\n"
        "from evoagent.memory.mine import mine\n"
        "from evoagent.memory.store import MemoryStore\n"
        "print(mine(sys.argv[1], MemoryStore(sys.argv[2]), batch_size=4).stored)\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(git_repo.path), str(uri)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    assert sorted(int(out) for out, _ in outputs) == [0, 25]
    store = MemoryStore(uri)
    assert store.count() == 25
    assert store.known_shas() == all_shas(git_repo)


def test_merges_and_full_fields_survive_the_store(git_repo, store):
    git_repo.commit("base", {"a.py": "def f():\n    return 1\n"})
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.commit("feature: fixes #3", {"tests/test_a.py": "def test_f():\n    pass\n"})
    git_repo.git("checkout", "-q", "main")
    git_repo.commit("main work", {"b.txt": "b\n"})
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    result = mine(git_repo.path, store)
    assert result.stored == 4
    merge = store.get(git_repo.head())
    assert merge.is_merge and len(merge.parents) == 2
    feature = store.get(git_repo.git("rev-parse", "feature"))
    assert feature.issue_refs == ["#3"]
    assert feature.tests_touched == ["tests/test_a.py"]
    assert [(f.path, f.change, f.added) for f in feature.files] == [("tests/test_a.py", "A", 2)]


def test_a_missing_blob_does_not_stop_mining(git_repo, store):
    shas = history(git_repo, 3)
    broken = git_repo.commit("edit data", {"data.txt": "secret\n", "f.py": "x = 9\n"})
    shas += [broken, git_repo.commit("after", {"g.py": "y = 1\n"})]
    blob = git_repo.git("rev-parse", f"{broken}:data.txt")
    (git_repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    result = mine(git_repo.path, store, batch_size=2)
    assert (result.stored, result.without_diff) == (len(shas), 1)
    assert store.known_shas() == all_shas(git_repo)
    memory = store.get(broken)
    assert sorted(memory.paths) == ["data.txt", "f.py"]
    assert memory.diff_excerpt.startswith(DIFF_UNAVAILABLE)
    assert store.get(shas[0]).files[0].added == 1  # the others keep their diffs


def test_to_row_has_every_field_and_the_search_text():
    memory = Memory(
        sha="a" * 40,
        parents=["b" * 40],
        author="A",
        author_email="a@example.com",
        authored_at=1,
        committed_at=2,
        subject="Fix it",
        message="Fix it\n\nFixes #3",
        issue_refs=["#3"],
        files=[FileChange("new.py", "old.py", "R", 3, 4, False)],
        symbols=["new.py::f"],
        tests_touched=["tests/test_new.py"],
        diff_excerpt="diff",
        keywords=["k"],
        problem="p",
        root_cause="r",
        solution="s",
    )
    expected = {**dataclasses.asdict(memory), "text": memory.search_text()}
    assert memory.to_row() == expected
    assert Memory.from_row(memory.to_row()) == memory
