"""Parsing the streamed `git log -p` into Memory records, on real repositories."""

from __future__ import annotations

import pytest
from evoagent.memory.gitlog import (
    DIFF_UNAVAILABLE,
    GitLogError,
    extract_issue_refs,
    is_test_path,
    iter_commits,
    parse_log,
    symbol_name,
)
from evoagent.memory.records import DIFF_EXCERPT_CHARS, MESSAGE_CHARS

PY_BEFORE = """\
import os


class Bar(Base):
    size = 1

    def foo(self, x):
        y = 0
        z = 0
        a = 1
        b = 2
        c = 3
        d = 4
        e = 5
        f = 6
        return a + b + c + d + e + f + x


def helper():
    one = 1
    two = 2
    zero = 0
    three = 3
    return one
"""


def memories(repo) -> dict[str, object]:
    return {m.sha: m for m in iter_commits(repo.path)}


def test_normal_commit_fields(git_repo):
    git_repo.commit("Add bar", {"pkg/bar.py": PY_BEFORE, "README.md": "hi\n"})
    after = PY_BEFORE.replace("c = 3", "c = 4").replace("three = 3", "three = 33\n    four = 4")
    sha = git_repo.commit(
        "Fixed #30000 -- Make foo add four.\n\nRefs GH-12 and owner/repo#5.",
        {"pkg/bar.py": after, "tests/test_bar.py": "def test_foo():\n    pass\n"},
    )
    found = memories(git_repo)
    assert len(found) == 2
    m = found[sha]
    assert m.parents == [git_repo.git("rev-parse", "HEAD~1")]
    assert (m.author, m.author_email) == ("Test Author", "author@example.com")
    assert m.authored_at == m.committed_at == 1_700_000_000 + 2 * 60
    assert m.subject == "Fixed #30000 -- Make foo add four."
    assert m.message == "Fixed #30000 -- Make foo add four.\n\nRefs GH-12 and owner/repo#5."
    assert m.issue_refs == ["#30000", "#12", "owner/repo#5"]
    changes = {f.path: (f.change, f.added, f.removed, f.binary) for f in m.files}
    assert changes == {
        "pkg/bar.py": ("M", 3, 2, False),
        "tests/test_bar.py": ("A", 2, 0, False),
    }
    assert m.symbols == ["pkg/bar.py::foo", "pkg/bar.py::helper"]
    assert m.tests_touched == ["tests/test_bar.py"]
    assert "+        c = 4" in m.diff_excerpt
    assert "diff --git a/pkg/bar.py b/pkg/bar.py" in m.diff_excerpt
    assert not m.is_merge


def test_rename_records_old_path(git_repo):
    body = "".join(f"line {i}\n" for i in range(30))
    git_repo.commit("add", {"old/name.py": body})
    sha = git_repo.commit("move", {"old/name.py": None, "new/name.py": body + "extra\n"})
    (change,) = memories(git_repo)[sha].files
    assert (change.path, change.old_path, change.change) == ("new/name.py", "old/name.py", "R")
    assert (change.added, change.removed) == (1, 0)


def test_pure_rename_of_path_with_spaces(git_repo):
    body = "".join(f"line {i}\n" for i in range(30))
    git_repo.commit("add", {"a dir/old name.txt": body})
    sha = git_repo.commit("move", {"a dir/old name.txt": None, "b dir/new name.txt": body})
    (change,) = memories(git_repo)[sha].files
    assert (change.path, change.old_path, change.change) == (
        "b dir/new name.txt",
        "a dir/old name.txt",
        "R",
    )


def test_binary_file(git_repo):
    sha = git_repo.commit("logo", {"img/logo.png": b"\x89PNG\x00\x01\x02" * 50})
    sha2 = git_repo.commit("logo 2", {"img/logo.png": b"\x89PNG\x00\x03" * 70})
    found = memories(git_repo)
    (added,) = found[sha].files
    assert (added.path, added.change, added.binary) == ("img/logo.png", "A", True)
    (changed,) = found[sha2].files
    assert (changed.path, changed.change, changed.binary, changed.added) == (
        "img/logo.png",
        "M",
        True,
        0,
    )


def test_non_utf8_message_and_path(git_repo):
    git_repo.write("caf\udce9.txt", "x\n")  # a raw latin-1 byte in the file name
    git_repo.git("add", "-A")
    git_repo.git(
        "-c", "i18n.commitEncoding=latin-1", "commit", "-q", "-F", "-", input=b"Caf\xe9 au lait\n"
    )
    latin = git_repo.head()
    git_repo.write("b.txt", "y\n")
    git_repo.git("add", "-A")
    git_repo.git("commit", "-q", "-F", "-", input=b"raw \xff\xfe bytes\n")
    raw = git_repo.head()
    found = memories(git_repo)
    assert found[latin].subject == "Café au lait"  # re-encoded by git from the header
    assert found[latin].files[0].path == "caf\ufffd.txt"
    # No encoding header: whatever git makes of it, we get valid text, never a crash.
    assert found[raw].subject.startswith("raw ")
    assert found[raw].subject.encode("utf-8")


def test_quoted_path_with_tab_and_quote(git_repo):
    name = 'we"ird\tname.py'
    sha = git_repo.commit("odd name", {name: "def f():\n    return 1\n"})
    git_repo.commit("binary odd", {'bin"ary\t.dat': b"\x00\x01"})
    found = memories(git_repo)
    assert found[sha].files[0].path == name
    assert found[git_repo.head()].files[0].path == 'bin"ary\t.dat'


def test_enormous_diff_is_bounded(git_repo):
    lines = 200_000
    sha = git_repo.commit(
        "vendor", {"vendor/big.js": "".join(f"var x{i} = {i};\n" for i in range(lines))}
    )
    m = memories(git_repo)[sha]
    assert len(m.diff_excerpt) == DIFF_EXCERPT_CHARS
    assert m.files[0].added == lines


def test_long_message_is_capped(git_repo):
    sha = git_repo.commit("subject\n\n" + "word " * 4000)
    m = memories(git_repo)[sha]
    assert len(m.message) == MESSAGE_CHARS
    assert m.subject == "subject"


def test_message_cannot_forge_a_commit(git_repo):
    tricky = "subject\n\ndiff --git a/x b/x\n@@ -1 +1 @@\n+evil\n--- a/y\n"
    sha = git_repo.commit(tricky, {"a.py": "x = 1\n"})
    (m,) = memories(git_repo).values()
    assert m.sha == sha
    assert m.message == tricky.strip()
    assert [f.path for f in m.files] == ["a.py"]


def test_merge_commit(git_repo):
    git_repo.commit("base", {"a.txt": "a\n"})
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.commit("feature work", {"b.txt": "b\n"})
    git_repo.git("checkout", "-q", "main")
    git_repo.commit("main work", {"c.txt": "c\n"})
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge branch 'feature' (#7)", "feature")
    found = memories(git_repo)
    assert len(found) == 4
    merge = found[git_repo.head()]
    assert merge.is_merge
    assert len(merge.parents) == 2
    assert merge.files == [] and merge.diff_excerpt == ""
    assert merge.issue_refs == ["#7"]
    assert [f.path for f in found[git_repo.git("rev-parse", "feature")].files] == ["b.txt"]


def test_submodule_gitlink(git_repo):
    git_repo.commit("base", {"a.txt": "a\n"})
    first, second = "1" * 40, "2" * 40
    git_repo.git("update-index", "--add", "--cacheinfo", f"160000,{first},vendor/sub")
    git_repo.git("commit", "-q", "-m", "add submodule")
    added = git_repo.head()
    git_repo.git("update-index", "--cacheinfo", f"160000,{second},vendor/sub")
    git_repo.git("commit", "-q", "-m", "bump submodule")
    found = memories(git_repo)
    (change,) = found[added].files
    assert (change.path, change.change, change.added) == ("vendor/sub", "A", 1)
    (bump,) = found[git_repo.head()].files
    assert (bump.path, bump.change, bump.added, bump.removed) == ("vendor/sub", "M", 1, 1)
    assert "Subproject commit " + second in found[git_repo.head()].diff_excerpt


def test_delete_and_mode_change(git_repo):
    git_repo.commit("add", {"run.sh": "echo hi\n", "gone.txt": "bye\n"})
    (git_repo.path / "run.sh").chmod(0o755)
    sha = git_repo.commit("exec and delete", {"gone.txt": None})
    changes = {f.path: (f.change, f.added, f.removed) for f in memories(git_repo)[sha].files}
    assert changes == {"gone.txt": ("D", 0, 1), "run.sh": ("M", 0, 0)}


def test_stdin_mode_returns_exactly_the_requested_commits(git_repo):
    shas = [git_repo.commit(f"c{i}", {"f.txt": f"{i}\n"}) for i in range(4)]
    wanted = [shas[2], shas[0]]
    assert [m.sha for m in iter_commits(git_repo.path, shas_stdin=wanted)] == wanted


def test_repo_attributes_override_our_drivers(git_repo):
    # The repo says *.py has no funcname driver: git's default picks the class line
    # for hunks inside the method, not the `def` line.
    body = PY_BEFORE.replace("    def foo", "  def foo")
    git_repo.commit("add", {"m.py": body, ".gitattributes": "*.py -diff\n"})
    sha = git_repo.commit("edit", {"m.py": body.replace("c = 3", "c = 5")})
    assert memories(git_repo)[sha].symbols == []  # -diff: binary, so no hunks at all
    assert memories(git_repo)[sha].files[0].binary


def test_closing_the_iterator_early_is_clean(git_repo):
    for i in range(3):
        git_repo.commit(f"c{i}", {"f.txt": f"{i}\n"})
    commits = iter_commits(git_repo.path)
    first = next(commits)
    commits.close()
    assert first.subject == "c2"


def test_parse_log_tolerates_an_empty_stream():
    assert list(parse_log([])) == []


@pytest.mark.parametrize(
    ("context", "name"),
    [
        ("def foo(self, x):", "foo"),
        ("    async def fetch(url):", "fetch"),
        ("class Bar(Base):", "Bar"),
        ("func (r *T) Name(ctx context.Context) error {", "Name"),
        ("func main() {", "main"),
        ("pub fn parse(input: &str) -> Result<()> {", "parse"),
        ("impl<T> Display for Wrapper<T> {", "Wrapper"),
        ("function foo(a, b) {", "foo"),
        ("export default async function handler(req) {", "handler"),
        ("const render = (props) => {", "render"),
        ("  componentDidMount() {", "componentDidMount"),
        ("public class Foo extends Bar {", "Foo"),
        ("    public static void main(String[] args) {", "main"),
        ("static int make_foo(struct foo *f)", "make_foo"),
        ("void Widget::paint(int x)", "paint"),
        ("def self.build(attrs)", "build"),
        ("module Rails", "Rails"),
        ("if (x) {", ""),
        ("", ""),
    ],
)
def test_symbol_name(context, name):
    assert symbol_name(context) == name


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("Fixed #30000 -- Added thing.", ["#30000"]),
        ("Fixes #12, closes #12 and GH-99", ["#12", "#99"]),
        ("Closes owner/repo#5", ["owner/repo#5"]),
        (
            "See https://github.com/pallets/flask/issues/4521 and .../pull/17",
            ["pallets/flask#4521"],
        ),
        ("https://github.com/psf/requests/pull/6000", ["psf/requests#6000"]),
        ("color #fff, entity &#38;, C#10, page#3", []),
    ],
)
def test_extract_issue_refs(text, refs):
    assert extract_issue_refs(text) == refs


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_app.py", True),
        ("pkg/test_util.py", True),
        ("pkg/util_test.py", True),
        ("conftest.py", True),
        ("server/handler_test.go", True),
        ("web/src/app.spec.ts", True),
        ("web/src/app.test.js", True),
        ("src/test/java/org/FooTest.java", True),
        ("spec/models/user_spec.rb", True),
        ("lib/__tests__/x.js", True),
        ("src/app.py", False),
        ("src/contest.py", False),
        ("src/latest/attest.go", False),
        ("docs/testing.md", False),
    ],
)
def test_is_test_path(path, expected):
    assert is_test_path(path) is expected


def test_parse_log_decodes_invalid_bytes_per_field():
    sha = b"a" * 40
    stream = [
        b"\x00\x1eEVO\x1f" + sha + b"\x00\x00Jos\xe9\x00j@x\x0010\x0020\x00bad \xff msg\n",
        b"\x00\x1eEND\x1f\n",
        b"\n",
        b"diff --git a/caf\xe9.py b/caf\xe9.py\n",
        b"--- a/caf\xe9.py\n",
        b"+++ b/caf\xe9.py\n",
        b"@@ -1 +1 @@ def caf\xc3\xa9():\n",
        b"-x\n",
        b"+\xff\n",
    ]
    (m,) = parse_log(stream)
    assert (m.sha, m.author, m.subject) == ("a" * 40, "Jos\ufffd", "bad \ufffd msg")
    assert (m.authored_at, m.committed_at) == (10, 20)
    assert [(f.path, f.added, f.removed) for f in m.files] == [("caf\ufffd.py", 1, 1)]
    assert m.symbols == ["caf\ufffd.py::café"]


def test_empty_stdin_list_yields_nothing(git_repo):
    git_repo.commit("one", {"a.txt": "a\n"})
    assert list(iter_commits(git_repo.path, shas_stdin=[])) == []


def test_unknown_revision_raises(git_repo):
    git_repo.commit("one", {"a.txt": "a\n"})
    with pytest.raises(GitLogError):
        list(iter_commits(git_repo.path, shas_stdin=["0" * 40]))


def test_symbols_from_our_js_driver_and_gits_go_driver(git_repo):
    js = (
        "import x from 'y';\n\nexport function render(props) {\n"
        + "".join(f"  const a{i} = {i};\n" for i in range(10))
        + "}\n\nclass Foo {\n  handle(evt) {\n"
        + "".join(f"    let b{i} = {i};\n" for i in range(10))
        + "  }\n}\n"
    )
    go = (
        "package main\n\nfunc (s *Server) Serve(addr string) error {\n"
        + "".join(f"\tv{i} := {i}\n" for i in range(10))
        + "\treturn nil\n}\n"
    )
    git_repo.commit("add", {"web/app.js": js, "srv/main.go": go})
    sha = git_repo.commit(
        "edit",
        {
            "web/app.js": js.replace("a7 = 7", "a7 = 70").replace("b8 = 8", "b8 = 80"),
            "srv/main.go": go.replace("v6 := 6", "v6 := 60"),
        },
    )
    assert memories(git_repo)[sha].symbols == [
        "srv/main.go::Serve",
        "web/app.js::render",
        "web/app.js::handle",
    ]


# --- missing objects (partial clones, snapshots without big blobs) ---------------------


def drop_blob(repo, rev_path: str) -> str:
    """Delete one loose blob from .git/objects; returns its id."""
    blob = repo.git("rev-parse", rev_path)
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    return blob


def test_missing_blob_costs_only_the_commit_that_needs_it(git_repo):
    git_repo.commit("base", {"a.py": "def f():\n    return 1\n", "data.txt": "v1\n"})
    broken = git_repo.commit("edit data", {"data.txt": "v2\n", "a.py": "def f():\n    return 2\n"})
    after = git_repo.commit("after", {"a.py": "def f():\n    return 3\n", "c.txt": "c\n"})
    drop_blob(git_repo, f"{broken}:data.txt")  # git now dies inside this commit's patch
    for found in (
        list(iter_commits(git_repo.path)),
        list(iter_commits(git_repo.path, shas_stdin=git_repo.git("rev-list", "HEAD").split())),
    ):
        assert [m.sha for m in found] == git_repo.git("rev-list", "HEAD").split()
        by_sha = {m.sha: m for m in found}
        m = by_sha[broken]
        assert m.subject == "edit data"
        assert sorted((f.path, f.change, f.added) for f in m.files) == [
            ("a.py", "M", 0),
            ("data.txt", "M", 0),
        ]
        assert m.diff_excerpt.startswith(DIFF_UNAVAILABLE)
        assert "unable to read" in m.diff_excerpt
        assert m.symbols == []
        # The commits on either side keep their full diffs.
        assert [(f.path, f.added) for f in by_sha[after].files] == [("a.py", 1), ("c.txt", 1)]
        assert not by_sha[after].diff_excerpt.startswith(DIFF_UNAVAILABLE)
        assert "+v1" in by_sha[git_repo.git("rev-parse", "HEAD~2")].diff_excerpt


def test_missing_blob_needed_by_rename_detection(git_repo):
    # Delete one file and add another: -M reads both blobs before git prints the commit,
    # so git dies between commits and even `--raw -M` fails; `--raw --no-renames` does not.
    first = git_repo.commit("base", {"old.py": "".join(f"x{i} = {i}\n" for i in range(20))})
    moved = git_repo.commit(
        "move", {"old.py": None, "new.py": "".join(f"y{i} = {i}\n" for i in range(20))}
    )
    last = git_repo.commit("last", {"z.txt": "z\n"})
    drop_blob(git_repo, f"{moved}:new.py")
    found = list(iter_commits(git_repo.path))
    assert [m.sha for m in found] == [last, moved, first]
    assert not found[0].diff_excerpt.startswith(DIFF_UNAVAILABLE)
    assert found[1].diff_excerpt.startswith(DIFF_UNAVAILABLE)
    assert sorted((f.path, f.change) for f in found[1].files) == [("new.py", "A"), ("old.py", "D")]
    assert found[2].files[0].added == 20 and found[2].diff_excerpt


def test_raw_lines_parse_renames_and_quoted_paths():
    header = b"\x00\x1eEVO\x1f" + b"a" * 40 + b"\x00\x00n\x00e\x001\x002\x00msg\n\x00\x1eEND\x1f\n"
    raw = (
        b"\n:100644 100644 1111111 2222222 R087\told.py\tnew.py\n"
        b':000000 100644 0000000 3333333 A\t"tab\\there.txt"\n'
        b":100644 000000 4444444 0000000 D\tgone.txt\n"
        b":100644 100755 5555555 5555555 M\trun.sh\n"
        b":120000 100644 6666666 7777777 T\tlink\n"
    )
    (m,) = parse_log((header + raw).splitlines(keepends=True))
    assert [(f.path, f.old_path, f.change) for f in m.files] == [
        ("new.py", "old.py", "R"),
        ("tab\there.txt", "", "A"),
        ("gone.txt", "", "D"),
        ("run.sh", "", "M"),
        ("link", "", "M"),
    ]


def test_a_missing_commit_object_still_raises(git_repo):
    git_repo.commit("one", {"a.txt": "a\n"})
    sha = git_repo.commit("two", {"a.txt": "b\n"})
    (git_repo.path / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    with pytest.raises(GitLogError):
        list(iter_commits(git_repo.path, shas_stdin=[sha]))
