"""The pytest command tests configure for the repositories they build in tmp dirs.

This interpreter's venv holds pytest plugins for evoagent's own suite (textual-snapshot,
syrupy, anyio, xdist). pytest imports every installed plugin when it starts, which is most of
each sandboxed run of a scratch repository's few tests (about 0.8 s of 1 s), and those tests
use none of them: the command turns each one off by name. What runs is still the real pytest
of this interpreter on the repository's own tests, in the real sandbox."""

from __future__ import annotations

import shlex
import sys
from importlib.metadata import entry_points

NO_PLUGINS = tuple(
    arg for name in sorted({ep.name for ep in entry_points(group="pytest11")})
    for arg in ("-p", f"no:{name}")
)
PYTEST_ARGV = (sys.executable, "-m", "pytest", *NO_PLUGINS)
PYTEST = shlex.join(PYTEST_ARGV)
"""For `test_command` in config.toml and `--test-command`."""
