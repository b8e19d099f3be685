"""Test helper shared by the agent and app tests: tune a repo's live genome as a user would."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from evoagent.agent.genome import init_genome


def configure_genome(repo: Path, **loop: object) -> None:
    """Set [loop] keys in the repo's live genome and commit them there, as a user would."""
    genome = repo / ".evoagent" / "agent"
    init_genome(genome)
    toml = genome / "agent.toml"
    text = toml.read_text()
    for key, value in loop.items():
        text, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert count == 1, key
    toml.write_text(text)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tune loop"],
        cwd=genome, check=True, capture_output=True,
    )
