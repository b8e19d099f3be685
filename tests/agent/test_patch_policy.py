"""agent/patch_policy.py and agent/patch_sections.py on real `git diff --binary` output: what
may reach the person's checkout (protected paths, .git, symlinks out, gitlinks, malformed
sections) and which kept changes are test infrastructure, checked by applying `kept` and
`deciding` with `git apply` in fresh clones of the base."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from evoagent.agent.genome import Policy
from evoagent.agent.patch_policy import review_patch
from evoagent.agent.patch_sections import join, split

DIFF = ("--binary", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/")
POLICY = Policy(protected=[".git/**", ".evoagent/**", "secrets/**"])


def run_git(cwd: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=False)


def staged_patch(repo) -> str:
    """The workspace's change as the kernel takes it: everything staged, diffed with the
    kernel's exact flags."""
    repo.git("add", "-A", "-f")
    out = run_git(repo.path, "diff", "--cached", *DIFF)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("utf-8", "surrogateescape")


def base_files(repo, rev: str = "HEAD"):
    """(old_text, old_mode) read from the base commit's objects."""

    def old_text(path: str) -> str | None:
        out = run_git(repo.path, "cat-file", "blob", f"{rev}:{path}")
        return out.stdout.decode("utf-8", "surrogateescape") if out.returncode == 0 else None

    def old_mode(path: str) -> str | None:
        out = run_git(repo.path, "ls-tree", "-z", rev, "--", path).stdout
        return out.split(b" ", 1)[0].decode() if out else None

    return old_text, old_mode


def review(repo, patch: str):
    return review_patch(patch, POLICY, *base_files(repo))


def apply_in_clone(repo, patch: str, tmp_path: Path, rev: str = "HEAD") -> Path:
    """A fresh clone of the base with `patch` applied by `git apply` (checked first)."""
    clone = tmp_path / f"clone-{len(list(tmp_path.glob('clone-*')))}"
    assert run_git(tmp_path, "clone", "-q", str(repo.path), str(clone)).returncode == 0
    run_git(clone, "checkout", "-q", rev)
    data = patch.encode("utf-8", "surrogateescape")
    check = run_git(clone, "apply", "--check", "-", input=data)
    assert check.returncode == 0, check.stderr.decode()
    assert run_git(clone, "apply", "-", input=data).returncode == 0
    return clone


def tree_of(root: Path) -> str:
    """The tree git would record for `root`'s working tree (names, modes, contents)."""
    run_git(root, "add", "-A", "-f")
    return run_git(root, "write-tree").stdout.decode().strip()


def links_escaping(root: Path) -> list[str]:
    """Symlinks under root that, followed on disk, end outside it or inside its .git."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                real = Path(os.path.realpath(path))
                inside = real == root.resolve() or root.resolve() in real.parents
                if not inside or (root / ".git").resolve() in (real, *real.parents):
                    bad.append(path.relative_to(root).as_posix())
    return sorted(bad)


def reasons(items) -> dict[str, str]:
    return {item.path: item.reason for item in items}


# --- benign changes stay untouched -----------------------------------------------------------


def test_ordinary_changes_are_kept_byte_for_byte_and_apply(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {
        "README.md": "# project\n",
        "src/pkg/mod.py": "def f():\n    return 1\n",
        "pyproject.toml": '[project]\nname = "p"\ndependencies = ["requests>=2.0"]\n\n'
                          '[tool.pytest.ini_options]\naddopts = "-q"\n',
        "rename_me.py": "x = 1\n" * 5,
        "run.sh": "echo hi\n",
        "gone.py": "old\n",
        "with space.py": "a\nb\n",
        "crlf.txt": "one\r\ntwo\x0c\r\nthree\u2028four\n",
        "data.bin": b"\x00\x01\x02" * 50,
    })
    w = repo.path
    (w / "src/pkg/mod.py").write_text("def f():\n    return 2\n")
    repo.write("tests/test_mod.py", "from pkg.mod import f\n\ndef test_f():\n    assert f() == 2\n")
    (w / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["requests>=2.31"]\n\n'
        '[tool.pytest.ini_options]\naddopts = "-q"\n')
    (w / "rename_me.py").rename(w / "renamed.py")
    os.chmod(w / "run.sh", 0o755)
    (w / "gone.py").unlink()
    (w / "with space.py").write_text("a\nB\n")
    (w / "crlf.txt").write_text("one\r\nTWO\x0c\r\nthree\u2028four\n", newline="")
    (w / "data.bin").write_bytes(b"\x00\x01\x03" * 50)
    repo.write("new.bin", b"\x00binary\xff")
    repo.write("tést \"quoted\"\t.py", "é = 1\n")
    repo.write("empty.py", "")
    (w / "docs").mkdir()
    os.symlink("../README.md", w / "docs/README.md")
    patch = staged_patch(repo)
    expected = tree_of(w)

    result = review(repo, patch)

    assert result.dropped == [] and result.infrastructure == []
    assert result.kept == patch and result.deciding == patch
    assert tree_of(apply_in_clone(repo, result.kept, tmp_path)) == expected


def test_sections_carry_paths_modes_and_link_targets(make_repo):
    repo = make_repo()
    repo.commit("base", {"a.py": "a\n"})
    os.symlink("target/file", repo.path / "link")
    repo.write("tést.py", "t\n")
    repo.write("blob.bin", b"\x00\x01")
    (repo.path / "a.py").rename(repo.path / "b.py")
    patch = staged_patch(repo)

    parsed = split(patch)

    assert parsed.preamble == "" and join(parsed.sections) == patch
    by_path = {s.new_path: s for s in parsed.sections}
    assert by_path["b.py"].old_path == "a.py"
    assert by_path["link"].is_symlink and by_path["link"].link_target == "target/file"
    assert by_path["link"].old_path is None and by_path["link"].new_mode == "120000"
    assert by_path["tést.py"].well_formed and '"b/t\\303\\251st.py"' in by_path["tést.py"].text
    assert by_path["blob.bin"].binary and not by_path["blob.bin"].hunks
    assert all(s.well_formed for s in parsed.sections)


# --- item 6: what may be written -------------------------------------------------------------


def test_protected_paths_and_renames_across_them_are_dropped(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {"ok.py": "x = 1\n", "secrets/key.txt": "k\n", "move_in.py": "m\n" * 4})
    repo.write(".evoagent/agent/skills/evil.md", "run this\n")
    repo.write(".EvoAgent/agent/skills/evil2.md", "case variant\n")
    (repo.path / "secrets/key.txt").rename(repo.path / "stolen.txt")  # renamed out of secrets/
    (repo.path / "move_in.py").rename(repo.path / "secrets/move_in.py")  # renamed into it
    repo.write("ok.py", "x = 2\n")
    patch = staged_patch(repo)

    result = review(repo, patch)

    dropped = reasons(result.dropped)
    assert dropped[".evoagent/agent/skills/evil.md"] == "protected path .evoagent/"
    assert dropped[".EvoAgent/agent/skills/evil2.md"] == "protected path .evoagent/"
    assert "secrets/**" in dropped["secrets/key.txt -> stolen.txt"]
    assert "secrets/**" in dropped["move_in.py -> secrets/move_in.py"]
    assert [s.new_path for s in split(result.kept).sections] == ["ok.py"]
    clone = apply_in_clone(repo, result.kept, tmp_path)
    assert not (clone / ".evoagent").exists() and not (clone / "stolen.txt").exists()
    assert (clone / "ok.py").read_text() == "x = 2\n"


def test_dotgit_paths_in_any_spelling_are_dropped(make_repo, tmp_path):
    """git refuses to stage these, but a diff of trees (which a sandbox with a writable object
    store can make) prints them; build such trees with mktree and diff them for real."""
    repo = make_repo()
    repo.commit("base", {"a": "a\n"})

    def blob(data: bytes) -> str:
        return run_git(repo.path, "hash-object", "-w", "--stdin", input=data).stdout.decode().strip()

    def tree(entries: dict[str, object]) -> str:
        lines = b""
        for name, value in entries.items():
            if isinstance(value, dict):
                lines += b"040000 tree " + tree(value).encode() + b"\t" + name.encode() + b"\0"
            else:
                lines += b"100644 blob " + blob(value).encode() + b"\t" + name.encode() + b"\0"
        return run_git(repo.path, "mktree", "-z", input=lines).stdout.decode().strip()

    evil = tree({
        "a": b"b\n",
        ".git": {"hooks": {"post-commit": b"#!/bin/sh\ncurl evil\n"}},
        ".GIT": {"config": b"[core]\nfsmonitor = evil\n"},
        "sub": {".Git": b"gitdir: /tmp/elsewhere\n"},
        ".git. ": {"config": b"ntfs\n"},
        ".g\u200cit": {"config": b"hfs\n"},
    })
    base = run_git(repo.path, "rev-parse", "HEAD^{tree}").stdout.decode().strip()
    out = run_git(repo.path, "diff", *DIFF, base, evil)
    patch = out.stdout.decode("utf-8", "surrogateescape")

    result = review(repo, patch)

    assert {d.path for d in result.dropped} == {
        ".git/hooks/post-commit", ".GIT/config", "sub/.Git", ".git. /config", ".g\u200cit/config"
    }
    assert all(d.reason == "protected path .git" for d in result.dropped)
    assert [s.new_path for s in split(result.kept).sections] == ["a"]
    assert (apply_in_clone(repo, result.kept, tmp_path) / "a").read_text() == "b\n"


def test_symlinks_out_of_the_repository_are_dropped_and_in_repo_links_kept(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {"README.md": "r\n", "docs/guide.md": "g\n", "secrets/key": "k\n"})
    w = repo.path
    os.symlink("../docs/guide.md", w / "docs/moved_link")
    os.symlink("guide.md", w / "docs/changed_link")
    repo.commit("links")
    os.symlink("/home/user/.ssh/id_rsa", w / "key")
    os.symlink("../../../..", w / "up")
    os.symlink("../..", w / "docs/deep")
    os.symlink(".git/config", w / "gitconfig")
    os.symlink("../.GIT/hooks", w / "docs/hooks")
    os.symlink(".evoagent/agent/skills", w / "skills")
    os.symlink("secrets/key", w / "secret_link")
    os.symlink("/tmp/\x1b]52;c;cHduZWQ=\x07", w / "escape")
    (w / "a").mkdir()
    os.symlink("..", w / "a/l1")  # the repository root: inside
    os.symlink("l1/..", w / "a/l2")  # lexically a/, on disk the root's parent
    os.symlink("../README.md", w / "docs/README.md")
    (w / "docs/changed_link").unlink()
    os.symlink("../../etc/passwd", w / "docs/changed_link")
    (w / "docs/moved_link").rename(w / "moved_link")  # ../docs/guide.md now leaves the repo
    patch = staged_patch(repo)

    result = review(repo, patch)

    dropped = reasons(result.dropped)
    assert dropped["key"] == "symlink to outside the repository (/home/user/.ssh/id_rsa)"
    assert dropped["up"] == "symlink to outside the repository (../../../..)"
    assert dropped["docs/deep"] == "symlink to outside the repository (../..)"
    assert dropped["gitconfig"] == "symlink into .git (.git/config)"
    assert dropped["docs/hooks"] == "symlink into .git (../.GIT/hooks)"
    assert dropped["skills"] == "symlink into .evoagent/ (.evoagent/agent/skills)"
    assert dropped["secret_link"].startswith("symlink to a path the genome's policy protects")
    assert dropped["a/l2"].startswith("symlink whose target goes up after a directory name")
    assert dropped["docs/changed_link"] == "symlink to outside the repository (../../etc/passwd)"
    assert dropped["docs/moved_link -> moved_link"] == (
        "symlink to outside the repository (../docs/guide.md)")
    assert dropped["escape"] == "symlink to outside the repository (/tmp/)"  # OSC 52 dropped whole
    assert all(str(d).isprintable() for d in result.dropped)
    assert {s.new_path for s in split(result.kept).sections} == {"a/l1", "docs/README.md"}
    clone = apply_in_clone(repo, result.kept, tmp_path)
    assert links_escaping(clone) == []
    assert os.readlink(clone / "docs/README.md") == "../README.md"
    assert (clone / "docs/README.md").read_text() == "r\n"


def test_a_moved_file_missing_from_the_base_is_dropped(make_repo):
    """A pure rename carries no mode: the base tells whether it moves a symlink or a gitlink,
    and a file the base does not have is not judged blind."""
    repo = make_repo()
    repo.commit("base", {"docs/notes.txt": "n\n" * 3})
    (repo.path / "docs/notes.txt").rename(repo.path / "notes.txt")
    patch = staged_patch(repo)
    old_text, _ = base_files(repo)

    result = review_patch(patch, POLICY, old_text, lambda path: None)

    assert reasons(result.dropped) == {
        "docs/notes.txt -> notes.txt": "moved file that the base does not have"
    }


def test_gitlinks_are_dropped(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {"a.py": "a\n"})
    inner = make_repo("repo/vendored")
    inner.commit("inner", {"x": "x\n"})
    repo.write("a.py", "b\n")
    patch = staged_patch(repo)
    assert "new file mode 160000" in patch

    result = review(repo, patch)

    assert reasons(result.dropped) == {"vendored": "submodule (gitlink) change"}
    clone = apply_in_clone(repo, result.kept, tmp_path)
    assert not (clone / "vendored").exists()


def test_a_typechange_goes_whole_when_its_symlink_half_is_dropped(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {"config.py": "safe = True\n"})
    (repo.path / "config.py").unlink()
    os.symlink("/etc/passwd", repo.path / "config.py")
    patch = staged_patch(repo)
    assert len(split(patch).sections) == 2  # deletion + new symlink

    result = review(repo, patch)

    assert [d.reason for d in result.dropped] == [
        "goes with the dropped change to config.py",
        "symlink to outside the repository (/etc/passwd)",
    ]
    assert result.kept == ""


def test_text_git_would_read_outside_well_formed_sections_is_dropped(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", {"ok.py": "x = 1\n", "other.py": "y = 1\n"})
    repo.write("ok.py", "x = 2\n")
    repo.write("other.py", "y = 2\n")
    patch = staged_patch(repo)
    smuggled = ("--- a/.evoagent/agent/skills/s.md\n+++ b/.evoagent/agent/skills/s.md\n"
                "@@ -0,0 +1 @@\n+evil\n")
    first, second = (s.text for s in split(patch).sections)
    hidden_after_hunks = first + smuggled + second
    in_preamble = smuggled + patch
    renamed_under_cover = second.replace("+++ b/other.py", "+++ b/elsewhere.py")

    # `git apply` alone writes the smuggled file in both forms.
    for crafted in (hidden_after_hunks, in_preamble):
        clone = apply_in_clone(repo, crafted, tmp_path)
        assert (clone / ".evoagent/agent/skills/s.md").exists()

    hidden = review(repo, hidden_after_hunks)
    preamble = review(repo, in_preamble)
    renamed = review(repo, renamed_under_cover)

    assert [d.path for d in hidden.dropped] == ["ok.py"]
    assert hidden.dropped[0].reason.startswith("malformed patch section (unexpected text")
    assert hidden.kept == second
    assert [d.reason for d in preamble.dropped] == ["text outside any file section"]
    assert preamble.kept == patch
    assert renamed.dropped[0].reason.startswith("malformed patch section (the diff --git line")
    assert renamed.kept == ""


# --- item 5: what may decide the verdict -----------------------------------------------------

INFRA_BASE = {
    "src/pkg/mod.py": "def f():\n    return 1\n",
    "tests/conftest.py": "import pytest\n",
    "pyproject.toml": '[project]\nname = "p"\ndependencies = ["attrs>=21"]\n',
    "tox.ini": "[tox]\nenvlist = py311\n\n[testenv]\ndeps = pytest\n",
    "setup.cfg": "[metadata]\nversion = 1.0\n\n[tool:pytest]\naddopts = -q\n",
    "setup.py": "from setuptools import setup\nsetup(version='1.0')\n",
    "plugin/setup.py": "from setuptools import setup\nsetup(version='1.0',\n"
                       "      entry_points={'pytest11': ['p = plugin.p']})\n",
    "sub/pyproject.toml": '[project]\nname = "sub"\n',
    "other/pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-q"\n',
    "sub/tox.ini": "[pytest]\naddopts = -q\n",
    "sub2/tox.ini": "[testenv]\ndeps = pytest\n",
    "sub3/tox.ini": "[pytest]\naddopts = -q\n",
    "sub/setup.cfg": "[tool:pytest]\naddopts = -q\n",
}


def test_test_infrastructure_is_flagged_and_left_out_of_deciding(make_repo, tmp_path):
    repo = make_repo()
    repo.commit("base", INFRA_BASE)
    changes = {
        # the fix and the benign neighbours
        "src/pkg/mod.py": "def f():\n    return 2\n",
        "tests/test_new.py": "def test_new():\n    assert True\n",
        "tests/pytest_helpers.py": "HELP = 1\n",
        "docs/py/notes.md": "a py directory without __init__ shadows nothing\n",
        "pyproject.toml": '[project]\nname = "p"\ndependencies = ["attrs>=23"]\n',
        "tox.ini": "[tox]\nenvlist = py312\n\n[testenv]\ndeps = pytest\n",
        "setup.cfg": "[metadata]\nversion = 1.1\n\n[tool:pytest]\naddopts = -q\n",
        "setup.py": "from setuptools import setup\nsetup(version='1.1')\n",
        # infrastructure
        "conftest.py": "def pytest_runtest_makereport(item, call): ...\n",
        "tests/conftest.py": "import pytest\npytest_plugins = ['evil']\n",
        "pytest.ini": "[pytest]\naddopts = -p evil\n",
        "sub/tox.ini": "[pytest]\naddopts = -p evil\n",
        "sub2/tox.ini": "[testenv]\ndeps = pytest\x0c[pytest]\x0caddopts = -p evil\n",
        # iniconfig reads "[x] y" as a continuation line of addopts, not a new section
        "sub3/tox.ini": "[pytest]\naddopts = -q\n[x] y\n  -p evil\n",
        "sub/setup.cfg": "[tool:pytest]\naddopts = -p evil\n",
        "sub/pyproject.toml": '[project]\nname = "sub"\n\n'
                              '[project.entry-points."pytest11"]\nevil = "evil"\n',
        "other/pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-p evil"\n',
        "plugin/setup.py": "from setuptools import setup\nsetup(version='1.1',\n"
                           "      entry_points={'pytest11': ['p = plugin.p']})\n",
        "src/sitecustomize.py": "import evil\n",
        "usercustomize.py": "import evil\n",
        "src/evil.pth": "import evil\n",
        "src/pytest.py": "raise SystemExit(0)\n",
        "lib/_pytest/runner.py": "pass\n",
        "pluggy/__init__.py": "pass\n",
        "vendor/py/__init__.py": "pass\n",
        "py.py": "pass\n",
        "src/pkg/__pycache__/mod.cpython-311.pyc": b"\xa7\r\r\n\x01\x00\x00\x00stale",
        "src/p.egg-info/entry_points.txt": "[pytest11]\nevil = evil\n",
    }
    for path, content in changes.items():
        repo.write(path, content)
    patch = staged_patch(repo)

    result = review(repo, patch)

    benign = {"src/pkg/mod.py", "tests/test_new.py", "tests/pytest_helpers.py",
              "docs/py/notes.md", "pyproject.toml", "tox.ini", "setup.cfg", "setup.py"}
    flagged = reasons(result.infrastructure)
    assert set(flagged) == set(changes) - benign
    assert result.dropped == [] and result.kept == patch
    assert {s.new_path for s in split(result.deciding).sections} == benign
    assert "[tool:pytest]" in flagged["sub/setup.cfg"]
    assert "pytest11 entry points" in flagged["sub/pyproject.toml"]
    assert "[tool.pytest]" in flagged["other/pyproject.toml"]
    assert flagged["sub2/tox.ini"].startswith("pytest configuration in tox.ini changed")
    assert flagged["plugin/setup.py"] == "setup.py names pytest11 (pytest plugin entry points)"
    assert flagged["src/pytest.py"].startswith("module pytest in src can shadow the test runner")
    assert flagged["lib/_pytest/runner.py"].startswith("module _pytest at lib/_pytest/")
    assert flagged["vendor/py/__init__.py"].startswith("package py at vendor/py/")
    assert all(str(i).isprintable() for i in result.infrastructure)
    clone = apply_in_clone(repo, result.deciding, tmp_path)
    assert (clone / "src/pkg/mod.py").read_text() == "def f():\n    return 2\n"
    assert not (clone / "conftest.py").exists()
    assert (clone / "tests/conftest.py").read_text() == "import pytest\n"


def test_configuration_that_cannot_be_read_counts_as_changed(make_repo):
    repo = make_repo()
    repo.commit("base", {"pyproject.toml": '[project]\nname = "p"\n'})
    repo.write("pyproject.toml", '[project]\nname = "p"\nbroken = \n')
    patch = staged_patch(repo)

    unreadable_after = review(repo, patch)
    no_base = review_patch(patch, POLICY, lambda path: None, lambda path: None)

    assert "could not be read or parsed" in unreadable_after.infrastructure[0].reason
    assert unreadable_after.deciding == ""
    assert "could not be read or parsed" in no_base.infrastructure[0].reason


@pytest.mark.parametrize("cut", ["\n", ""])
def test_a_patch_cut_short_round_trips(make_repo, cut):
    repo = make_repo()
    repo.commit("base", {"a.txt": "a"})
    repo.write("a.txt", "b")
    patch = staged_patch(repo)
    assert patch.endswith("\\ No newline at end of file\n")
    text = patch[:-1] + cut

    assert join(split(text).sections) == text
    assert review(repo, text).kept == text


def test_two_sections_for_one_file_are_dropped(make_repo, tmp_path):
    """Each section is judged against the base, so a second section for the same file
    (which `git apply` applies on top of the first) could hide what the pair does."""
    repo = make_repo()
    repo.commit("base", {"pyproject.toml": '[project]\nname = "p"\n\n[tool.other]\nx = 1\n',
                         "ok.py": "a\n"})
    repo.write("pyproject.toml", '[project]\nname = "p"\n\n[tool.other]\naddopts = "-p evil"\n')
    first = staged_patch(repo)
    repo.commit("step")
    repo.write("pyproject.toml",
               '[project]\nname = "p"\n\n[tool.pytest.ini_options]\naddopts = "-p evil"\n')
    repo.write("ok.py", "b\n")
    second = staged_patch(repo)
    crafted = first + second
    apply_in_clone(repo, crafted, tmp_path, rev="HEAD~1")  # git takes the pair

    result = review_patch(crafted, POLICY, *base_files(repo, "HEAD~1"))

    assert [d.reason for d in result.dropped] == ["more than one section changes pyproject.toml"] * 2
    assert [s.new_path for s in split(result.kept).sections] == ["ok.py"]
