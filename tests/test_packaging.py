"""The wheel must contain every package folder: setuptools only installs listed ones."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"agent": "evoagent.agent", "memory": "evoagent.memory", "sandbox": "evoagent.sandbox", "tui": "evoagent.tui"}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for folder, dotted in TOP_LEVEL.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((dotted, *rel)))
    assert found - listed == set()
    assert config["package-dir"]["evoagent.agent_template"] == ".agent-template"
