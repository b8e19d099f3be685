"""Test helpers shared by the CLI tests: run `evoagent` in a repository in-process, through
click (results and output) or through `main()` (exit codes and the one-line errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from evoagent.agent.cli import cli, main


def invoke(repo: Path, *args: str):
    """`evoagent ARGS` run from `repo` by click's runner; exceptions propagate."""
    old = Path.cwd()
    os.chdir(repo)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def run_main(repo: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`evoagent ARGS` through the console entry point: (exit code, stdout, stderr)."""
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["evoagent", *args])
    try:
        main()  # a command that succeeds may simply return
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def git(repo: Path, *args: str) -> str:
    """git's stripped stdout; fails the test on a non-zero exit."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()
