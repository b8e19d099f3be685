import subprocess

import pytest
from evoagent.memory import gittree


def test_list_files_reads_the_revision_not_the_working_tree(git_repo):
    first = git_repo.commit("one", {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n"})
    git_repo.commit("two", {"a.py": "x = 10\n", "c.py": "z = 3\n"})
    git_repo.write("a.py", "uncommitted\n")
    git_repo.write("untracked.py", "nope\n")

    old = {e.path: e for e in gittree.list_files(git_repo.path, first)}
    assert sorted(old) == ["a.py", "pkg/b.py"]
    assert old["a.py"].size == len("x = 1\n")
    blobs = gittree.read_blobs(git_repo.path, [e.sha for e in old.values()])
    assert blobs[old["a.py"].sha] == b"x = 1\n"

    head = {e.path: e for e in gittree.list_files(git_repo.path)}
    assert sorted(head) == ["a.py", "c.py", "pkg/b.py"]
    assert gittree.read_blobs(git_repo.path, [head["a.py"].sha]) == {head["a.py"].sha: b"x = 10\n"}


def test_symlinks_and_submodules_are_skipped(git_repo, make_repo):
    sub = make_repo("sub")
    sub.commit("sub", {"s.txt": "s\n"})
    git_repo.commit("base", {"real.py": "pass\n"})
    (git_repo.path / "link.py").symlink_to("real.py")
    git_repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendored"
    )
    git_repo.commit("links")
    paths = sorted(e.path for e in gittree.list_files(git_repo.path))
    assert paths == [".gitmodules", "real.py"]


def test_non_utf8_path_round_trips(git_repo):
    name = b"caf\xe9.py".decode("utf-8", "surrogateescape")
    (git_repo.path / name).write_bytes(b"print(1)\n")
    git_repo.commit("latin-1 name")
    [entry] = gittree.list_files(git_repo.path)
    assert entry.path.encode("utf-8", "surrogateescape") == b"caf\xe9.py"
    assert gittree.read_blobs(git_repo.path, [entry.sha]) == {entry.sha: b"print(1)\n"}


def test_read_blobs_many_big_and_missing(git_repo):
    files = {f"f{i:04d}.txt": f"content {i}\n" * (i % 7 + 1) for i in range(3000)}
    files["big.bin"] = "x" * 5000
    git_repo.commit("many", files)
    entries = {e.path: e for e in gittree.list_files(git_repo.path)}
    shas = [e.sha for e in entries.values()] + ["0" * 40]
    blobs = gittree.read_blobs(git_repo.path, shas, max_bytes=1000)
    assert entries["big.bin"].sha not in blobs
    assert "0" * 40 not in blobs
    assert len(blobs) == 3000
    assert blobs[entries["f0042.txt"].sha] == files["f0042.txt"].encode()


def test_bare_repository(git_repo, tmp_path):
    git_repo.commit("one", {"a.py": "x = 1\n"})
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(git_repo.path), str(bare)], check=True)
    [entry] = gittree.list_files(bare, "HEAD")
    assert gittree.read_blobs(bare, [entry.sha]) == {entry.sha: b"x = 1\n"}
    assert gittree.resolve(bare) == git_repo.head()


def test_bad_revision_raises(git_repo):
    git_repo.commit("one", {"a.py": "x\n"})
    with pytest.raises(gittree.GitError):
        gittree.list_files(git_repo.path, "no-such-rev")
    with pytest.raises(gittree.GitError):
        gittree.resolve(git_repo.path, "no-such-rev")
