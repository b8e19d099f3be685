"""`evoagent demo`: the whole loop on a tiny repository with a real bug, no key needed.

The model is the scripted provider (clearly labelled): it locates the bug, reads the file,
makes a wrong first fix, sees the kernel's failing-test digest, fixes it properly and
finishes. Everything else — memory, code index, sandbox, tests, refinement, report — is
the real machinery.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import EXIT_MODEL, EvoError
from .scripted_provider import ScriptedReply, ScriptedToolCall, register_script

DEMO_SCRIPT = "evoagent-demo"
ISSUE = "clamp() returns the lower bound for values above the upper bound\n\nclamp(15, 0, 10) should be 10 but returns 0."

FILES = {
    "mathutils.py": '''"""Small numeric helpers."""


def clamp(value, low, high):
    """Limit value to the range [low, high]."""
    if value < low:
        return low
    if value > high:
        return low
    return value
''',
    "tests/test_mathutils.py": '''from mathutils import clamp


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_below():
    assert clamp(-3, 0, 10) == 0


def test_above():
    assert clamp(15, 0, 10) == 10
''',
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
}

BUGGY = "    if value > high:\n        return low\n"
PYTEST_MISSING = 10
"""The probe's exit status when the sandbox's python runs but has no pytest."""
PYTEST_PROBE = (
    "import importlib.util, sys; print(sys.executable); "
    f"sys.exit(0 if importlib.util.find_spec('pytest') else {PYTEST_MISSING})"
)


def _call(name: str, **arguments) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def demo_steps() -> list[ScriptedReply]:
    return [
        _call("locate", query=ISSUE, k=3),
        _call("read", path="mathutils.py"),
        ScriptedReply(
            text="The upper-bound branch returns `low`. I'll make it return the bound.",
            tool_calls=[ScriptedToolCall("edit", {"edits": [{
                "path": "mathutils.py", "search": BUGGY,
                "replace": "    if value > high:\n        return high - 1\n"}]})],
        ),
        _call("finish", summary="clamp() now returns the upper bound for large values."),
        # The kernel runs the tests, test_above still fails, the digest comes back:
        ScriptedReply(
            text="Off by one: the upper bound itself is allowed.",
            tool_calls=[ScriptedToolCall("edit", {"edits": [{
                "path": "mathutils.py", "search": "        return high - 1\n",
                "replace": "        return high\n"}]})],
        ),
        _call("run_tests"),
        _call("finish", summary="clamp() returned `low` for values above `high`; it now returns `high`."),
    ]


def build_demo_repo(where: Path) -> Path:
    repo = where / "demo-repo"
    repo.mkdir(parents=True)
    env_args = ["-c", "user.name=evoagent demo", "-c", "user.email=demo@localhost",
                "-c", "commit.gpgsign=false"]

    def git(*args: str) -> None:
        subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "mathutils.py").write_text(FILES["mathutils.py"].replace(BUGGY, "    return value\n").replace("    if value < low:\n        return low\n", ""))
    git("add", "-A")
    git("commit", "-q", "-m", "Add mathutils with a pass-through clamp")
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git("add", "-A")
    git("commit", "-q", "-m", "Make clamp() respect both bounds and add tests")
    return repo


def register_demo_script() -> str:
    register_script(DEMO_SCRIPT, demo_steps())
    return f"scripted/{DEMO_SCRIPT}"


def require_pytest(venv: Path | None) -> None:
    """The demo's tests run as `python -m pytest` in the sandbox; ask the sandbox, before
    anything else, whether the `python` it finds there has pytest. Without it the scripted
    replies would meet test results they were not written for and run out (exit 3, "script
    exhausted"), which says nothing about the cause. Missing: one line, exit 3 (a
    prerequisite is unavailable, as with a missing model; nothing the person typed was wrong)."""
    from evoagent.sandbox.config import SandboxConfig
    from evoagent.sandbox.local import make_runner

    runner = make_runner(SandboxConfig(venv=venv))
    result = runner.run(["python", "-c", PYTEST_PROBE], Path("/"), timeout=60)
    if result.exit_code == 0:
        return
    first = (result.output.strip().splitlines() or [""])[0].strip()
    if result.exit_code == PYTEST_MISSING:
        raise EvoError(f"pytest is not installed for {first}, the python the demo's sandbox runs "
                       f"its tests with: install it there (`{first} -m pip install pytest`) "
                       "or put a python that has it first on PATH", EXIT_MODEL)
    why = first or f"exit status {result.exit_code}"
    raise EvoError(f"the demo's sandbox cannot run `python` ({why}): put a Python 3 with pytest "
                   "first on PATH", EXIT_MODEL)
