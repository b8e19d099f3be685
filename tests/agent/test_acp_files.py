"""`patches.apply_through`, the writer `/accept` uses when an ACP client offers its file
system: on real git patches of a real repository, through an editor-like `FileAccess` kept
in memory (the ACP round trip itself is in test_acp_client.py). What it cannot write is
refused before anything is read or written, so the caller's `git apply` takes the whole."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from evoagent.agent.patches import (
    NotWritableThrough,
    PatchError,
    StaleFile,
    apply_through,
    undo,
)

LINES = "".join(f"line {n}\n" for n in range(1, 11))


class Buffers:
    """An editor's buffers over the repository: reads fall back to disk, writes stay here."""

    def __init__(self, root: Path, fail_on: str = ""):
        self.root, self.fail_on = root, fail_on
        self.open: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def read(self, rel: str) -> str | None:
        self.calls.append(("read", rel))
        if rel in self.open:
            return self.open[rel]
        path = self.root / rel
        return path.read_text() if path.is_file() else None

    def write(self, rel: str, text: str) -> None:
        self.calls.append(("write", rel))
        if rel == self.fail_on:
            raise OSError("disk full")
        self.open[rel] = text

    def remove(self, rel: str) -> None:
        self.calls.append(("remove", rel))
        self.open.pop(rel, None)


@pytest.fixture
def repo(git_repo):
    git_repo.commit("base", {"a.txt": LINES, "b.txt": "b\n", "tool.sh": "echo hi\n"})
    return git_repo


def diff_of(repo, change) -> str:
    """The patch `change(root)` makes against the committed tree (then undone)."""
    change(repo.path)
    repo.git("add", "-A")
    patch = subprocess.run(["git", "diff", "--cached", "-M", "--binary"], cwd=repo.path,
                           capture_output=True, text=True, check=True).stdout
    repo.git("reset", "-q", "--hard")
    repo.git("clean", "-qfd")
    return patch


def edit_a_and_add_c(root: Path) -> None:
    (root / "a.txt").write_text(LINES.replace("line 5\n", "line five\n"))
    (root / "src").mkdir()
    (root / "src" / "c.txt").write_text("new\n")


def test_modifications_and_creations_are_read_and_written_through_the_buffers(repo):
    patch = diff_of(repo, edit_a_and_add_c)
    files = Buffers(repo.path)
    files.open["a.txt"] = LINES + "unsaved tail\n"  # an edit below the hunk still fits

    applied = apply_through(repo.path, patch, files)

    assert files.open == {"a.txt": LINES.replace("line 5\n", "line five\n") + "unsaved tail\n",
                          "src/c.txt": "new\n"}
    assert (repo.path / "a.txt").read_text() == LINES  # nothing on disk but the new directory
    assert (repo.path / "src").is_dir() and not (repo.path / "src" / "c.txt").exists()
    assert applied.paths == ["a.txt", "src/c.txt"] and applied.through is files

    files.open["a.txt"] += "more\n"
    with pytest.raises(PatchError, match=r"cannot undo: a\.txt changed in your editor"):
        undo(repo.path, applied)
    files.open["a.txt"] = LINES.replace("line 5\n", "line five\n") + "unsaved tail\n"
    undo(repo.path, applied)
    assert files.open == {"a.txt": LINES + "unsaved tail\n"}
    assert ("remove", "src/c.txt") in files.calls and not (repo.path / "src").exists()


def test_a_buffer_the_hunks_no_longer_fit_writes_nothing(repo):
    patch = diff_of(repo, edit_a_and_add_c)
    files = Buffers(repo.path)
    files.open["a.txt"] = LINES.replace("line 4\n", "line 4 edited\n")

    with pytest.raises(StaleFile) as stale:
        apply_through(repo.path, patch, files)

    assert stale.value.path == "a.txt"
    assert [c for c in files.calls if c[0] != "read"] == []
    assert not (repo.path / "src").exists()


def test_a_failed_write_puts_back_what_was_written_before_it(repo):
    patch = diff_of(repo, edit_a_and_add_c)
    files = Buffers(repo.path, fail_on="src/c.txt")

    with pytest.raises(PatchError, match=r"src/c\.txt: your editor could not write it "
                                         r"\(disk full\)"):
        apply_through(repo.path, patch, files)

    assert files.open == {"a.txt": LINES}
    assert not (repo.path / "src").exists()


def new_executable(path: Path) -> None:
    path.write_text("x\n")
    path.chmod(0o755)


@pytest.mark.parametrize(("change", "reason"), [
    (lambda root: (root / "b.txt").unlink(), "b.txt: a deletion"),
    (lambda root: (root / "b.txt").rename(root / "renamed.txt"), "a rename or copy"),
    (lambda root: os.chmod(root / "tool.sh", 0o755), "tool.sh: a mode change"),
    (lambda root: (root / "blob.bin").write_bytes(b"\0\1\2"), "blob.bin: not a change of text"),
    (lambda root: (root / "link").symlink_to("a.txt"), "link: a new file of mode 120000"),
    (lambda root: new_executable(root / "run.sh"), "run.sh: a new file of mode 100755"),
])
def test_what_an_editor_cannot_write_is_refused_before_anything_is_touched(repo, change, reason):
    patch = diff_of(repo, lambda root: (edit_a_and_add_c(root), change(root)))
    files = Buffers(repo.path)

    with pytest.raises(NotWritableThrough, match=reason):
        apply_through(repo.path, patch, files)

    assert files.calls == [] and not (repo.path / "src").exists()


def test_a_path_behind_a_link_or_an_existing_new_file_is_not_written(repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    patch = diff_of(repo, edit_a_and_add_c)
    (repo.path / "src").symlink_to(outside)  # appeared in the person's tree since
    with pytest.raises(NotWritableThrough, match="src/c.txt: behind a symbolic link"):
        apply_through(repo.path, patch, Buffers(repo.path))
    (repo.path / "src").unlink()
    (repo.path / "src").mkdir()
    (repo.path / "src" / "c.txt").write_text("the person's own\n")
    with pytest.raises(PatchError, match="src/c.txt: already exists in your tree"):
        apply_through(repo.path, patch, Buffers(repo.path))
    assert (repo.path / "src" / "c.txt").read_text() == "the person's own\n"
    assert list(outside.iterdir()) == []
