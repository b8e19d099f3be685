"""A small history with N fail→pass fixes, mined into tasks for real and moved between
splits with `tasks mine --ratios`, as a person would: shared by the tests of what `bench` and
`evolve run` say when a split they need is empty."""

from __future__ import annotations

import sys
from pathlib import Path

from cli_helpers import run_main
from scratch_pytest import PYTEST

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None
CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"


def build(git_repo, fixes: int) -> None:
    """The root, then per fix: a function that is wrong, then its fix with a test."""
    git_repo.commit("Initial calc", {"calc.py": CALC, "tests/test_calc.py": TEST_CALC})
    calc, tests = CALC, TEST_CALC
    for n in range(fixes):
        calc += f"\n\ndef f{n}(x):\n    return x\n"
        git_repo.commit(f"Add f{n}", {"calc.py": calc})
        calc = calc.replace(f"def f{n}(x):\n    return x", f"def f{n}(x):\n    return x + 1")
        tests += f"\n\ndef test_f{n}():\n    assert calc.f{n}(1) == 2\n"
        git_repo.commit(f"Fix f{n}", {"calc.py": calc, "tests/test_calc.py": tests})


def mine(repo: Path, monkeypatch, capsys, ratios: str) -> None:
    args = ["tasks", "mine", "--test-command", PYTEST, "--per-test-timeout", "5", "--runs", "1",
            "--ratios", ratios, *(["--venv", VENV] if VENV else [])]
    code, _, err = run_main(repo, monkeypatch, capsys, *args)
    assert code == 0, err
