"""`SandboxConfig.ro_binds`: a directory shown read-only at another place, over a writable one."""

import shutil

import pytest
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)


@pytest.fixture
def dirs(tmp_path):
    tree, history, other = tmp_path / "tree", tmp_path / "history", tmp_path / "other"
    for path in (tree, history, other):
        path.mkdir()
    (history / "HEAD").write_text("ref: refs/heads/main\n")
    return tree, history, other


def runner(*writable, ro_binds):
    return BwrapRunner(
        SandboxConfig(writable=writable, ro_binds=ro_binds, limits=Limits(timeout=20))
    )


def test_a_read_only_bind_wins_over_the_writable_workspace_around_it(dirs):
    tree, history, _ = dirs
    result = runner(tree, ro_binds=((history, tree / ".git"),)).run(
        "cat .git/HEAD; echo x > .git/new || echo refused-new; echo y > .git/HEAD"
        " || echo refused-head; echo ok > inside.txt",
        tree,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ref: refs/heads/main\n")
    assert "refused-new" in result.output and "refused-head" in result.output
    assert "Read-only file system" in result.output
    assert sorted(p.name for p in history.iterdir()) == ["HEAD"]
    assert (history / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (tree / "inside.txt").read_text() == "ok\n"  # the rest stays writable


def test_a_symlinked_destination_is_not_followed_out_of_the_workspace(dirs):
    tree, history, other = dirs
    (tree / ".git").symlink_to(other)  # written by an earlier sandboxed command
    result = runner(tree, other, ro_binds=((history, tree / ".git"),)).run(
        f"ls {other}; echo still-writable > {other}/probe; cat {other}/probe", tree
    )
    assert result.exit_code == 0, result.output
    assert "HEAD" not in result.output.split("evoagent:")[0]  # history not mounted on `other`
    assert (other / "probe").read_text() == "still-writable\n"
    assert "not mounted" in result.output and str(tree / ".git") in result.output


def test_a_destination_beyond_a_symlinked_directory_is_refused(dirs):
    tree, history, other = dirs
    (tree / "sub").symlink_to(other)
    result = runner(tree, other, ro_binds=((history, tree / "sub" / ".git"),)).run(
        f"ls -a {other}; touch {other}/probe", tree
    )
    assert result.exit_code == 0, result.output
    assert ".git" not in result.output.split("evoagent:")[0]
    assert (other / "probe").exists() and not (other / ".git").exists()
    assert "not mounted" in result.output


def test_a_destination_of_another_type_is_refused_and_the_command_still_runs(dirs):
    tree, history, _ = dirs
    (tree / ".git").write_text("gitdir: /somewhere/else\n")  # a gitfile instead of a directory
    result = runner(tree, ro_binds=((history, tree / ".git"),)).run("cat .git; echo ran", tree)
    assert "ran" in result.output and "gitdir: /somewhere/else" in result.output
    assert "not mounted" in result.output
