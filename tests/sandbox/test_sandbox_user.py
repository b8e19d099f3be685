"""Who sandboxed commands run as, and the ACLs that keep the workspace theirs to write."""

import errno
import os
import shutil
import warnings
from pathlib import Path

import pytest
from evoagent.sandbox import acl, bwrap, run_as
from evoagent.sandbox.acl import AclUnsupported, Granter
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.run_as import StillRootWarning, parse_user

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)
as_root = pytest.mark.skipif(
    os.getuid() != 0, reason="only a root caller drops to an unprivileged user"
)
U = 65534


def acl_of(path: Path, name: str = acl.ACCESS) -> dict:
    try:
        return acl.decode(os.getxattr(path, name, follow_symlinks=False))
    except OSError:
        return {}


def test_acl_format_round_trips():
    entries = {(acl.USER_OBJ, acl.UNDEFINED_ID): 6, (acl.USER, U): 6, (acl.GROUP_OBJ, acl.UNDEFINED_ID): 4,
               (acl.MASK, acl.UNDEFINED_ID): 6, (acl.OTHER, acl.UNDEFINED_ID): 4}  # fmt: skip
    assert acl.decode(acl.encode(entries)) == entries
    assert acl.decode(b"\x01\x00\x00\x00") == {} and acl.decode(b"\x02\x00\x00\x00junk") == {}


def test_parse_user():
    assert parse_user("1234:4321") == (1234, 4321)
    assert parse_user("root") == (0, 0)
    assert parse_user("99999") == (99999, 99999)  # no passwd entry: its own number as group
    with pytest.raises(ValueError, match="unknown user"):
        parse_user("no-such-user-here")


def test_granting_never_follows_a_link_out_of_the_tree(tmp_path):
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    outside.mkdir()
    (outside / "shadow").write_text("secret\n")
    os.chmod(outside / "shadow", 0o600)
    (tree / "file.py").write_text("x = 1\n")
    (tree / "sub").mkdir()
    (tree / "link-file").symlink_to(outside / "shadow")
    (tree / "link-dir").symlink_to(outside)
    os.link(outside / "shadow", tree / "hardlink")  # a second name for a file outside
    try:
        Granter().grant(tree, U)
    except AclUnsupported:
        pytest.skip("this filesystem has no POSIX ACLs")
    assert acl_of(tree / "file.py")[(acl.USER, U)] == 6
    assert acl_of(tree / "sub")[(acl.USER, U)] == 7
    assert acl_of(tree / "sub", acl.DEFAULT)[(acl.USER, U)] == 7
    assert acl_of(outside) == {} and acl_of(outside / "shadow") == {}
    assert os.stat(outside / "shadow").st_mode & 0o777 == 0o600


@needs_bwrap
@as_root
def test_another_sandbox_user_may_be_named(tmp_path, monkeypatch):
    runner = BwrapRunner(SandboxConfig(writable=(tmp_path,), run_as="1234:4321",
                                       limits=Limits(timeout=20)))
    assert runner.run("id -u; id -g; touch made", tmp_path).output == "1234\n4321\n"
    assert (tmp_path / "made").stat().st_uid == 1234
    monkeypatch.setenv(run_as.ENV, "0")
    root = BwrapRunner(SandboxConfig(writable=(tmp_path,), limits=Limits(timeout=20)))
    assert root.run("id -u", tmp_path).output == "0\n"


@needs_bwrap
@as_root
def test_without_setpriv_commands_run_as_root_after_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(run_as, "_probed", {})
    monkeypatch.setattr(run_as, "setpriv_path", lambda: None)
    runner = BwrapRunner(SandboxConfig(writable=(tmp_path,), limits=Limits(timeout=20)))
    with pytest.warns(StillRootWarning, match="setpriv"):
        assert runner.run("id -u", tmp_path).output == "0\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StillRootWarning)  # said once, not on every command
        assert runner.run("id -u", tmp_path).output == "0\n"


@needs_bwrap
@as_root
def test_a_filesystem_without_acls_falls_back_to_root_with_one_warning(tmp_path, monkeypatch):
    def unsupported(path, name, value):
        raise AclUnsupported(errno.EOPNOTSUPP, "POSIX ACLs unsupported")

    monkeypatch.setattr(acl, "_write", unsupported)
    monkeypatch.setattr(bwrap, "GRANTER", Granter())
    monkeypatch.setattr(bwrap, "_acl_warned", set())
    runner = BwrapRunner(SandboxConfig(writable=(tmp_path,), limits=Limits(timeout=20)))
    with pytest.warns(StillRootWarning, match="POSIX ACLs"):
        assert runner.run("id -u; touch made && echo made", tmp_path).output == "0\nmade\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StillRootWarning)
        assert runner.run("id -u", tmp_path).output == "0\n"


@needs_bwrap
@as_root
def test_per_call_writable_directories_are_granted_too(tmp_path):
    tree, report = tmp_path / "tree", tmp_path / "report"
    tree.mkdir()
    report.mkdir(mode=0o700)  # like a mkdtemp() made by the host for one call
    (report / "in.json").write_text("{}")
    runner = BwrapRunner(SandboxConfig(writable=(tree,), limits=Limits(timeout=20)))
    result = runner.run(f"id -u; cat {report}/in.json; echo '<xml/>' > {report}/out.xml", tree,
                        writable=(report,))
    assert result.output == f"{U}\n{{}}", result.output
    assert (report / "out.xml").read_text() == "<xml/>\n"
