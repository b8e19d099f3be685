"""agent/patches.py on real git repositories: hunk ids, selection that still applies,
apply to the working tree and undo byte for byte, refusals, commit of only those files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from evoagent.agent.patches import PatchError, apply_to_worktree, commit, parse, select, undo

LINES = "".join(f"line {n}\n" for n in range(1, 21))


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file (bytes and mode) and directory outside .git."""
    out: dict[str, tuple[bytes, int]] = {}
    for p in sorted(root.rglob("*")):
        if ".git" in p.relative_to(root).parts:
            continue
        rel = p.relative_to(root).as_posix()
        out[rel] = (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mode)
    return out


def git_state(repo) -> tuple[str, str, str]:
    return (repo.git("status", "--porcelain", "--untracked-files=all"),
            repo.git("diff", "--cached"), repo.head())


def diff_of(repo, change) -> str:
    """The patch `change(root)` makes against the committed tree, via git (then undone)."""
    change(repo.path)
    repo.git("add", "-A")
    patch = subprocess.run(["git", "diff", "--cached", "-M"], cwd=repo.path, capture_output=True,
                           text=True, check=True).stdout
    repo.git("reset", "-q", "--hard")
    repo.git("clean", "-qfd")
    return patch


@pytest.fixture
def repo(git_repo):
    git_repo.commit("base", {
        "two.txt": LINES, "gone.txt": "to be deleted\n", "old_name.txt": "renamed content\n",
        "nonl.txt": "no newline at end",
    })
    os.chmod(git_repo.path / "gone.txt", 0o755)
    git_repo.commit("exec bit", {})
    return git_repo


def two_hunks(root: Path) -> None:
    text = LINES.replace("line 2\n", "line 2 changed\nline 2b\n").replace("line 18\n", "line 18 changed\n")
    (root / "two.txt").write_text(text)


def everything(root: Path) -> None:
    two_hunks(root)
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "sub" / "new.py").write_text("print('new')\n")
    (root / "gone.txt").unlink()
    (root / "old_name.txt").rename(root / "new_name.txt")
    (root / "nonl.txt").write_text("no newline at the end")


def test_parse_gives_files_hunks_and_stable_ids(repo):
    patch = diff_of(repo, everything)
    files = parse(patch)
    by_path = {f.path: f for f in files}
    assert {p: f.status for p, f in by_path.items()} == {
        "two.txt": "modified", "pkg/sub/new.py": "added", "gone.txt": "deleted",
        "new_name.txt": "renamed", "nonl.txt": "modified",
    }
    assert by_path["new_name.txt"].old_path == "old_name.txt" and by_path["new_name.txt"].hunks == []
    two = by_path["two.txt"]
    assert [h.id for h in two.hunks] == [f"{two.id}:0", f"{two.id}:1"]
    assert [(h.added, h.removed) for h in two.hunks] == [(2, 1), (1, 1)]
    assert two.hunks[1].header.startswith("@@ -15,")
    assert "+line 18 changed\n" in two.hunks[1].text
    assert parse(patch) == files  # same text, same ids
    assert parse("") == []


def test_accepting_only_the_second_hunk_applies_only_that_change(repo):
    patch = diff_of(repo, two_hunks)
    [two] = parse(patch)
    applied = apply_to_worktree(repo.path, select(patch, [two.hunks[1].id]))
    assert (repo.path / "two.txt").read_text() == LINES.replace("line 18\n", "line 18 changed\n")
    assert applied.paths == ["two.txt"]


def test_a_later_hunk_still_applies_when_an_earlier_one_that_shifts_lines_is_skipped(repo):
    """The first hunk adds a line; keeping only the second needs its target start moved back."""
    patch = diff_of(repo, two_hunks)
    [two] = parse(patch)
    selected = select(patch, [two.hunks[1].id])
    assert "@@ -15,6 +16,6 @@" in patch and "@@ -15,6 +15,6 @@" in selected
    check = subprocess.run(["git", "apply", "--check", "-"], cwd=repo.path, input=selected,
                           text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_selecting_by_file_id_and_unknown_ids(repo):
    patch = diff_of(repo, everything)
    ids = {f.path: f.id for f in parse(patch)}
    only_rename = select(patch, [ids["new_name.txt"]])
    assert [f.path for f in parse(only_rename)] == ["new_name.txt"]
    assert select(patch, [f.id for f in parse(patch)]) == select(
        patch, [h.id for f in parse(patch) for h in f.hunks] + [ids["new_name.txt"]])
    with pytest.raises(PatchError, match="unknown hunk id"):
        select(patch, ["9:9"])


def test_apply_then_undo_restores_the_tree_byte_for_byte_around_the_users_own_edits(repo):
    patch = diff_of(repo, everything)
    # The user's uncommitted work, which neither apply nor undo may touch.
    repo.write("notes.txt", "untracked notes\n")
    repo.write("staged.txt", "staged\n")
    repo.git("add", "staged.txt")
    before, state = tree(repo.path), git_state(repo)

    applied = apply_to_worktree(repo.path, patch)
    after = tree(repo.path)
    assert "pkg/sub/new.py" in after and "gone.txt" not in after and "new_name.txt" in after
    assert after["notes.txt"] == before["notes.txt"] and after["staged.txt"] == before["staged.txt"]
    assert repo.git("diff", "--cached") == state[1]  # the index is not touched

    undo(repo.path, applied)
    assert tree(repo.path) == before  # bytes, modes (gone.txt's exec bit), no leftover pkg/
    assert git_state(repo) == state


def test_undo_is_refused_after_the_user_changed_a_touched_file(repo):
    patch = diff_of(repo, two_hunks)
    applied = apply_to_worktree(repo.path, patch)
    (repo.path / "two.txt").write_text("my own edit\n")
    with pytest.raises(PatchError, match=r"^cannot undo: two.txt changed since"):
        undo(repo.path, applied)
    assert (repo.path / "two.txt").read_text() == "my own edit\n"


def test_a_patch_that_does_not_apply_is_one_line_and_changes_nothing(repo):
    patch = diff_of(repo, everything)
    (repo.path / "two.txt").write_text("rewritten by the user\n")
    before = tree(repo.path)
    with pytest.raises(PatchError) as info:
        apply_to_worktree(repo.path, patch)
    assert info.value.message.startswith("the patch does not apply to the working tree: ")
    assert "\n" not in info.value.message
    assert tree(repo.path) == before
    with pytest.raises(PatchError, match="empty"):
        apply_to_worktree(repo.path, "")


def test_commit_takes_only_the_accepted_files(repo):
    patch = diff_of(repo, everything)
    repo.write("staged.txt", "staged, not mine to commit\n")
    repo.git("add", "staged.txt")
    applied = apply_to_worktree(repo.path, patch)
    sha = commit(repo.path, applied, "Accept the change")
    assert sha == repo.head()
    changed = repo.git("show", "--name-status", "--format=", "-M", sha).splitlines()
    assert sorted(changed) == sorted([
        "M\ttwo.txt", "A\tpkg/sub/new.py", "D\tgone.txt", "R100\told_name.txt\tnew_name.txt",
        "M\tnonl.txt",
    ])
    assert repo.git("diff", "--cached", "--name-only") == "staged.txt"
    assert repo.git("status", "--porcelain") == "A  staged.txt"
