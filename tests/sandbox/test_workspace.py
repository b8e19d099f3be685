import subprocess

import pytest
from evoagent.sandbox.workspace import GitError, Workspace


def snapshot(repo):
    """Everything about the user's repo a workspace must not change."""
    files = {
        p.relative_to(repo.path).as_posix(): p.read_bytes()
        for p in sorted(repo.path.rglob("*"))
        if p.is_file() and ".evoagent" not in p.parts and ".git" not in p.parts
    }
    git_dir = repo.path / ".git"
    return {
        "status": repo.git("status", "--porcelain=v2", "--untracked-files=all"),
        "diff": repo.git("diff", "--binary"),
        "cached": repo.git("diff", "--cached", "--binary"),
        "stash": repo.git("stash", "list"),
        "index": (git_dir / "index").read_bytes(),
        "objects": sorted(p.name for p in (git_dir / "objects").rglob("*")),
        "worktrees": repo.git("worktree", "list", "--porcelain"),
        "files": files,
    }


@pytest.fixture
def dirty_repo(git_repo):
    git_repo.commit(
        "base", {"a.txt": "a1\n", "b.txt": "b1\n", "gone.txt": "x\n", "bin.dat": b"\0\1"}
    )
    git_repo.write(".gitignore", "*.log\n")
    git_repo.git("add", ".gitignore")
    git_repo.write("a.txt", "a2 staged\n")
    git_repo.git("add", "a.txt")
    git_repo.write("a.txt", "a3 unstaged on top\n")
    git_repo.write("b.txt", "b2 unstaged\n")
    (git_repo.path / "gone.txt").unlink()
    git_repo.write("new/untracked.py", "print('hi')\n")
    git_repo.write("bin.dat", b"\0\2\3")
    git_repo.write("debug.log", "ignored\n")
    return git_repo


def test_workspace_holds_head_plus_every_kind_of_user_change(dirty_repo, tmp_path):
    before = snapshot(dirty_repo)
    ws = Workspace.create(dirty_repo.path, dirty_repo.path / ".evoagent" / "sandboxes")

    assert ws.path.parent.parent == (dirty_repo.path / ".evoagent" / "sandboxes").resolve()
    assert ws.git_dir == ws.path.parent / "git"  # history lives beside the tree, not in it
    assert list((ws.path / ".git").iterdir()) == []
    assert (ws.path / "a.txt").read_text() == "a3 unstaged on top\n"
    assert (ws.path / "b.txt").read_text() == "b2 unstaged\n"
    assert (ws.path / ".gitignore").read_text() == "*.log\n"
    assert (ws.path / "new" / "untracked.py").read_text() == "print('hi')\n"
    assert (ws.path / "bin.dat").read_bytes() == b"\0\2\3"
    assert not (ws.path / "gone.txt").exists()
    assert not (ws.path / "debug.log").exists()
    assert not (ws.path / ".evoagent").exists()
    assert ws.rev == dirty_repo.head()
    assert ws.base != ws.rev  # the user's changes are a baseline commit on top of HEAD
    assert ws.diff_since_base() == ""
    assert snapshot(dirty_repo) == before
    ws.remove()
    assert not ws.path.exists() and not ws.git_dir.exists()
    assert snapshot(dirty_repo) == before


def test_clean_repo_baseline_is_head_and_historical_rev_ignores_user_changes(git_repo, tmp_path):
    first = git_repo.commit("one", {"f.txt": "1\n"})
    git_repo.commit("two", {"f.txt": "2\n"})
    clean = Workspace.create(git_repo.path, tmp_path / "ws")
    assert clean.base == clean.rev == git_repo.head()

    git_repo.write("f.txt", "dirty\n")
    old = Workspace.create(git_repo.path, tmp_path / "ws", rev=first)
    assert old.base == old.rev == first
    assert (old.path / "f.txt").read_text() == "1\n"
    assert old.head() == first
    without = Workspace.create(git_repo.path, tmp_path / "ws", include_user_changes=False)
    assert (without.path / "f.txt").read_text() == "2\n"


def test_checkpoint_diff_and_reset(dirty_repo, tmp_path):
    ws = Workspace.create(dirty_repo.path, tmp_path / "ws")
    (ws.path / "b.txt").write_text("agent edit\n")
    first = ws.checkpoint("attempt 1")
    assert ws.git("log", "-1", "--format=%an <%ae>%n%s") == "evoagent <evoagent@localhost>\nattempt 1\n"

    (ws.path / "a.txt").unlink()
    (ws.path / "brand_new.py").write_text("x = 1\n")
    diff = ws.diff_since_base()
    assert "-b2 unstaged\n+agent edit" in diff
    assert "deleted file mode" in diff and "a/a.txt" in diff
    assert "+++ b/brand_new.py" in diff
    assert "untracked.py" not in diff  # user changes are in the baseline, not the diff
    with pytest.raises(GitError):  # sanity: it is a real patch against base, not the tree
        ws.git("apply", "--check", "-", input=diff.encode())

    ws.reset_to(first)
    assert (ws.path / "a.txt").read_text() == "a3 unstaged on top\n"
    assert not (ws.path / "brand_new.py").exists()
    assert ws.head() == first
    ws.reset_to(ws.base)
    assert ws.diff_since_base() == ""


def test_checkpoint_ignores_hooks_and_signing(git_repo, tmp_path):
    git_repo.commit("one", {"f.txt": "1\n"})
    ws = Workspace.create(git_repo.path, tmp_path / "ws")
    hooks = ws.git_dir / "hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    subprocess.run(["git", "--git-dir", str(ws.git_dir), "config", "commit.gpgsign", "true"],
                   check=True)
    (ws.path / "f.txt").write_text("2\n")
    sha = ws.checkpoint("passes despite the hook")
    assert sha == ws.head() != ws.base


def test_an_untracked_venv_is_neither_copied_nor_hashed(git_repo, tmp_path):
    """Python's venv writes no self-ignoring .gitignore before 3.13; copying one into every
    workspace cost thousands of files per run. Tracked directories of those names still come."""
    git_repo.commit("one", {"f.txt": "1\n", "venv/keep.py": "tracked = True\n"})
    for name in (".venv", "myenv"):
        git_repo.write(f"{name}/pyvenv.cfg", "home = /usr/bin\n")
        git_repo.write(f"{name}/lib/site.py", "x = 1\n")
    git_repo.write("node_modules/pkg/index.js", "module.exports = 1\n")
    git_repo.write("venv/keep.py", "tracked = 'and changed'\n")
    git_repo.write("notes.txt", "untracked work\n")

    ws = Workspace.create(git_repo.path, tmp_path / "ws")

    for name in (".venv", "myenv", "node_modules"):
        assert not (ws.path / name).exists(), name
    assert (ws.path / "venv" / "keep.py").read_text() == "tracked = 'and changed'\n"
    assert (ws.path / "notes.txt").read_text() == "untracked work\n"
    assert ws.git("ls-tree", "-r", "--name-only", ws.base).split() == ["f.txt", "notes.txt", "venv/keep.py"]
