"""Every command's --help answers, and none of them imports the heavy libraries.

The command tree is walked at run time, so a command added later is covered too."""

from __future__ import annotations

import json
import subprocess
import sys

SNIPPET = """
import json, sys
import click
from click.testing import CliRunner
import evoagent.agent.cli as cli_module

def walk(group, prefix):
    for name, command in sorted(group.commands.items()):
        yield prefix + [name]
        if isinstance(command, click.Group):
            yield from walk(command, prefix + [name])

codes = {" ".join(path): CliRunner().invoke(cli_module.cli, path + ["--help"]).exit_code
         for path in [[]] + list(walk(cli_module.cli, []))}
heavy = sorted(m for m in ("litellm", "lancedb", "tree_sitter", "textual") if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_every_command_has_cheap_help():
    proc = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout)
    assert {"fix", "demo", "mine", "recall", "locate", "approve"} <= set(report["codes"])
    assert {path: code for path, code in report["codes"].items() if code != 0} == {}
    assert report["heavy"] == []
