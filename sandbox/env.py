"""The environment a sandboxed command sees: an allow-list, never the caller's secrets."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

PASSED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SECRET = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|COOKIE)|(^|_)(AUTH|SESSION)(_|$)"
    r"|^(AWS|AZURE|GCP|GOOGLE|GH|GITHUB|GITLAB|OPENAI|ANTHROPIC|HF|HUGGING|SSH|GPG|DOCKER|NPM|PYPI)_",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return bool(SECRET.search(name))


def sandbox_env(
    home: Path,
    venv: Path | None = None,
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the minimal environment: allow-listed variables from `source` (os.environ), HOME,
    TMPDIR, the venv's VIRTUAL_ENV and bin/ first on PATH, then `extra` minus secret-looking names.
    """
    source = os.environ if source is None else source
    env = {name: source[name] for name in PASSED if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = str(home)
    env["TMPDIR"] = "/tmp"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    for name, value in (extra or {}).items():
        if is_secret_name(name):
            log.warning("sandbox: not passing %s into the sandbox (looks like a secret)", name)
            continue
        env[name] = value
    return env
