"""The bubblewrap boundary against a hostile repository and a root caller.

Canaries live in the fake HOME the test suite sets up (tests/conftest.py) and in root-only
files; each test fails if a sandboxed command can read or write what it must not.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)
CANARY = "-----BEGIN CANARY PRIVATE KEY-----"
REAL_PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def home_canary():
    """A private key in the fake HOME's ~/.ssh."""
    ssh = Path(os.environ["HOME"], ".ssh")
    (ssh / "keys").mkdir(parents=True)
    for key in (ssh / "id_rsa", ssh / "keys" / "id_rsa"):
        key.write_text(CANARY + "\n")
    return ssh


def hostile_venv(git_repo, python_target, cfg_home=None):
    """A repository that commits a `.venv` whose interpreter and pyvenv.cfg it chose."""
    venv = git_repo.path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(python_target)
    home = cfg_home if cfg_home is not None else Path(REAL_PYTHON).parent
    (venv / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n")
    git_repo.commit("add a venv")
    return venv


def run_boxed(git_repo, tmp_path, command, venv):
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    config = SandboxConfig(
        writable=(tree,), hidden=(git_repo.path,), venv=venv, limits=Limits(timeout=20)
    )
    return BwrapRunner(config).run(command, tree)


def test_a_committed_pyvenv_cfg_cannot_unhide_home(git_repo, tmp_path, home_canary):
    venv = hostile_venv(git_repo, REAL_PYTHON, cfg_home=home_canary / "x")
    result = run_boxed(git_repo, tmp_path, f"cat {home_canary}/id_rsa; python -c 'print(42)'", venv)
    assert CANARY not in result.output
    assert "42" in result.output  # the venv's real interpreter still works


@pytest.mark.parametrize("planted", [False, True], ids=["dangling", "executable"])
def test_a_venv_interpreter_pointing_into_home_cannot_unhide_it(
    git_repo, tmp_path, home_canary, planted
):
    fake = home_canary / "keys" / "bin" / "python"
    if planted:  # a real executable file, but no Python installation around it
        fake.parent.mkdir()
        shutil.copy("/bin/true", fake)
    venv = hostile_venv(git_repo, fake)
    result = run_boxed(git_repo, tmp_path, f"cat {home_canary}/keys/id_rsa; ls {fake}", venv)
    assert CANARY not in result.output
    assert "No such file or directory" in result.output


def test_a_venv_that_is_a_link_to_a_home_directory_is_not_shown(git_repo, tmp_path, home_canary):
    # As if the committed `.venv` were a symlink to ~/.ssh: the host hands the resolved path.
    (home_canary / "bin").mkdir()
    shutil.copy("/bin/true", home_canary / "bin" / "python")
    result = run_boxed(git_repo, tmp_path, f"cat {home_canary}/id_rsa", home_canary)
    assert CANARY not in result.output


def test_the_real_installation_behind_a_venv_under_home_stays_visible(git_repo, tmp_path):
    # A base Python installed under HOME (outside the toolchain roots evoagent knows): only
    # its prefix is shown, not its neighbours.
    pythons = Path(os.environ["HOME"], "pythons")
    prefix = pythons / "3.99"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / "python3.99").mkdir(parents=True)
    (prefix / "lib" / "python3.99" / "os.py").write_text("# stdlib\n")
    shutil.copy("/bin/true", prefix / "bin" / "python3.99")
    (prefix / "bin" / "python3").symlink_to("python3.99")
    (pythons / "secret.txt").write_text(CANARY + "\n")
    venv = hostile_venv(git_repo, prefix / "bin" / "python3", cfg_home=pythons)
    result = run_boxed(
        git_repo,
        tmp_path,
        f"cat {prefix}/lib/python3.99/os.py && {venv}/bin/python && echo ran;"
        f" cat {pythons}/secret.txt",
        venv,
    )
    assert "# stdlib\nran\n" in result.output
    assert CANARY not in result.output


# --- Run as root: the command runs as an unprivileged user ------------------------------------

as_root = pytest.mark.skipif(
    os.getuid() != 0, reason="only a root caller needs dropping to an unprivileged user"
)


@as_root
def test_as_root_a_sandboxed_command_is_not_root(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    runner = BwrapRunner(SandboxConfig(writable=(tree,), limits=Limits(timeout=20)))
    result = runner.run("id -u; cat /etc/shadow; echo shadow=$?", tree)
    uid = result.output.split()[0]
    assert uid.isdigit() and uid != "0", result.output
    assert "shadow=1" in result.output and "root:" not in result.output


@as_root
def test_as_root_the_workspace_stays_writable_after_host_writes(tmp_path):
    tree, history = tmp_path / "tree", tmp_path / "history"
    tree.mkdir()
    history.mkdir()
    (history / "HEAD").write_text("ref: refs/heads/main\n")
    (tree / "old.py").write_text("old = 1\n")
    config = SandboxConfig(
        writable=(tree,), ro_binds=((history, tree / ".git"),), limits=Limits(timeout=20)
    )
    runner = BwrapRunner(config)
    first = runner.run("echo 'made = 1' > made.py && echo more >> old.py && echo first-ok", tree)
    assert "first-ok" in first.output, first.output

    # The host writes between commands, the ways evoagent's tools, patches and git do.
    (tree / "new.py").write_text("new = 1\n")
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "pkg" / "sub" / "mod.py").write_text("mod = 1\n")
    handle, temp = tempfile.mkstemp(dir=tree)  # an atomic replace: mode 0600
    os.write(handle, b"atomic = 1\n")
    os.close(handle)
    os.replace(temp, tree / "atomic.py")
    (tree / "narrowed.py").write_text("narrowed = 1\n")
    os.chmod(tree / "narrowed.py", 0o644)
    outside = tmp_path / "moved.py"
    outside.write_text("moved = 1\n")
    os.chmod(outside, 0o600)
    os.replace(outside, tree / "moved.py")  # made elsewhere, renamed into the workspace

    second = runner.run(
        "for f in made.py old.py new.py pkg/sub/mod.py atomic.py narrowed.py moved.py;"
        " do echo '# sandboxed' >> $f || echo FAILED $f; done;"
        " touch pkg/sub/created.py || echo FAILED created; rm new.py || echo FAILED rm;"
        " echo x > .git/HEAD || echo refused-git; touch .git/hook || echo refused-hook;"
        " touch /tmp/t $HOME/t /dev/shm/t || echo FAILED tmp; echo second-ok",
        tree,
    )
    assert "second-ok" in second.output
    assert "FAILED" not in second.output, second.output
    assert "refused-git" in second.output and "refused-hook" in second.output
    for name in ("made.py", "old.py", "pkg/sub/mod.py", "atomic.py", "narrowed.py", "moved.py"):
        assert (tree / name).read_text().endswith("# sandboxed\n"), name
    assert not (tree / "new.py").exists() and (tree / "pkg" / "sub" / "created.py").exists()
    assert sorted(p.name for p in history.iterdir()) == ["HEAD"]
    assert (history / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert not [x for x in os.listxattr(history) if x.startswith("system.posix_acl")]
    assert (tree / "pkg" / "sub" / "created.py").stat().st_uid != 0
