"""Search/replace edits: exact, whitespace-tolerant, ambiguous, did-you-mean, all-or-nothing."""

from __future__ import annotations

import os

import pytest
from evoagent.agent.edits import Edit, PathError, apply_edits, resolve_inside

SOURCE = """\
def greet(name):
    if not name:
        return "hello"
    return f"hello {name}"


def shout(text):
    return text.upper()
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "app.py").write_text(SOURCE)
    return tmp_path


def test_exact_match_replaces_and_returns_diff(root):
    result = apply_edits(root, [Edit("app.py", "return text.upper()", "return text.upper() + '!'")])
    assert result.ok
    assert "return text.upper() + '!'" in (root / "app.py").read_text()
    diff = result.diffs["app.py"]
    assert diff.startswith("--- a/app.py\n+++ b/app.py\n")
    assert "-    return text.upper()\n+    return text.upper() + '!'\n" in diff


def test_whitespace_tolerant_match_reindents_replacement(root):
    # The model quoted the block without indentation and with trailing spaces.
    search = "if not name:   \n    return \"hello\"\n"
    replace = "if name is None:\n    raise ValueError(\"name\")\nif not name:\n    return \"hi\"\n"
    result = apply_edits(root, [Edit("app.py", search, replace)])
    assert result.ok, result.errors
    assert (root / "app.py").read_text() == SOURCE.replace(
        '    if not name:\n        return "hello"\n',
        '    if name is None:\n        raise ValueError("name")\n'
        '    if not name:\n        return "hi"\n',
    )


def test_whitespace_tolerant_match_with_deeper_quoted_indent(root):
    search = "            return text.upper()"
    result = apply_edits(root, [Edit("app.py", search, "            return text.lower()")])
    assert result.ok, result.errors
    assert "    return text.lower()\n" in (root / "app.py").read_text()


def test_ambiguous_match_asks_for_more_context(root):
    result = apply_edits(root, [Edit("app.py", "return", "yield")])
    assert not result.ok
    assert "matches 3 times (at lines 3, 4, 8)" in result.errors[0]
    assert "more surrounding lines" in result.errors[0]
    assert (root / "app.py").read_text() == SOURCE


def test_not_found_suggests_closest_lines_with_numbers(root):
    result = apply_edits(root, [Edit("app.py", "def shout(txt):\n    return txt.upper()\n", "x")])
    assert not result.ok
    error = result.errors[0]
    assert "search text not found" in error
    assert "Did you mean lines 7-8" in error
    assert "     7| def shout(text):" in error
    assert "     8|     return text.upper()" in error
    assert "No edits were applied" in result.message()


def test_all_or_nothing_across_files(root):
    (root / "other.py").write_text("x = 1\n")
    result = apply_edits(
        root,
        [Edit("other.py", "x = 1", "x = 2"), Edit("app.py", "no such line", "y")],
    )
    assert not result.ok
    assert result.errors[0].startswith("Edit 2 (app.py)")
    assert (root / "other.py").read_text() == "x = 1\n"
    assert result.diffs == {}


def test_blocks_apply_in_order_to_the_same_file(root):
    result = apply_edits(
        root,
        [Edit("app.py", "def shout(text):", "def yell(text):"), Edit("app.py", "def yell", "def roar")],
    )
    assert result.ok
    assert "def roar(text):" in (root / "app.py").read_text()


def test_empty_search_creates_new_file(root):
    result = apply_edits(root, [Edit("pkg/new.py", "", "VALUE = 1\n")])
    assert result.ok
    assert (root / "pkg/new.py").read_text() == "VALUE = 1\n"
    assert result.created == ["pkg/new.py"]
    assert result.diffs["pkg/new.py"].startswith("--- /dev/null\n+++ b/pkg/new.py\n")


def test_empty_search_on_existing_file_is_refused(root):
    result = apply_edits(root, [Edit("app.py", "", "oops")])
    assert not result.ok
    assert (root / "app.py").read_text() == SOURCE


def test_missing_file_with_search_text_is_an_error(root):
    result = apply_edits(root, [Edit("nope.py", "x", "y")])
    assert not result.ok
    assert "does not exist" in result.errors[0]


def test_crlf_files_keep_their_line_endings(tmp_path):
    (tmp_path / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    result = apply_edits(tmp_path, [Edit("w.txt", "two\n", "three\n")])
    assert result.ok
    assert (tmp_path / "w.txt").read_bytes() == b"one\r\nthree\r\n"


def test_file_mode_is_preserved(root):
    os.chmod(root / "app.py", 0o755)
    apply_edits(root, [Edit("app.py", "def shout", "def yell")])
    assert os.stat(root / "app.py").st_mode & 0o777 == 0o755


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "a/../../x", ".git/config"])
def test_paths_must_stay_inside_root(root, path):
    result = apply_edits(root, [Edit(path, "", "x")])
    assert not result.ok
    assert not (root.parent / "outside.py").exists()


def test_symlink_escaping_root_is_refused(root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("s\n")
    (root / "link").symlink_to(outside)
    with pytest.raises(PathError, match="outside the repo"):
        resolve_inside(root, "link/secret.txt")
    result = apply_edits(root, [Edit("link/secret.txt", "s", "t")])
    assert not result.ok
    assert (outside / "secret.txt").read_text() == "s\n"
