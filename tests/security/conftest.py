"""Canaries for the security tests: a secret key file in the fake HOME and a key in the
environment. Any test here can then assert that neither shows up anywhere it should not."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_helpers import ENV_CANARY, SSH_CANARY


@pytest.fixture
def canaries(monkeypatch) -> dict[str, Path | str]:
    home = Path.home()
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "id_rsa").write_text(f"-----BEGIN KEY-----\n{SSH_CANARY}\n-----END KEY-----\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_CANARY)
    return {"home": home, "key": ssh / "id_rsa", "ssh": SSH_CANARY, "env": ENV_CANARY}
