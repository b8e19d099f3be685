"""The sandbox shows the workspace where the repository stands (issue #12).

A src-layout package installed editable in the repository's own `.venv` (a `.pth` pointing at
`<repo>/src`, as `pip install -e .` writes), whose test also starts a child interpreter. The
agent's change must be what the tests and the child import — not the user's checkout (hidden)
and not nothing. The untracked `.venv` is not copied into the workspace; it is shown read-only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from cli_helpers import run_main
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

PKG = "def double(x):\n    return x + x + 1\n"
TESTS = '''import subprocess
import sys

import pkg


def test_double():
    assert pkg.double(2) == 4


def test_a_child_interpreter_imports_the_same_package():
    child = subprocess.run([sys.executable, "-c", "import pkg; print(pkg.__file__)"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == pkg.__file__
'''


def call(name: str, **arguments) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def editable_venv(repo: Path) -> Path:
    """`.venv` with pytest (from evoagent's own environment) and the package installed
    editable: a path file naming `<repo>/src`, the form `pip install -e` uses."""
    venv = repo / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "__editable__.pkg.pth").write_text(f"{repo / 'src'}\n")
    (site / "borrowed.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
    return venv


def test_an_editable_src_layout_and_its_child_interpreters_see_the_agents_change(
    git_repo, script, monkeypatch, capsys
):
    git_repo.commit("pkg", {"src/pkg/__init__.py": PKG, "tests/test_pkg.py": TESTS,
                            "pyproject.toml": "[tool.pytest.ini_options]\n"})
    editable_venv(git_repo.path)
    edit = {"path": "src/pkg/__init__.py", "search": "x + x + 1", "replace": "x + x"}
    model = script([call("edit", edits=[edit]), call("finish", summary="double doubles")])

    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "fix", "double(2) is 5",
                            "--model", model)

    run_dir = next((git_repo.path / ".evoagent" / "runs").iterdir())
    tests = json.loads((run_dir / "report.json").read_text())["tests"]
    assert tests["before"]["failed"] == ["tests/test_pkg.py::test_double"], err
    assert tests["before"]["passed"] == ["tests/test_pkg.py::test_a_child_interpreter_imports_the_same_package"]
    assert sorted(tests["after"]["passed"]) == [
        "tests/test_pkg.py::test_a_child_interpreter_imports_the_same_package",
        "tests/test_pkg.py::test_double",
    ]
    assert code == 0
    assert ".venv" not in (run_dir / "patch.diff").read_text()
    assert (git_repo.path / "src" / "pkg" / "__init__.py").read_text() == PKG  # not applied
