"""The meta agent reaches the model where the person configured it (`api_base`: a local
server or a proxy), like the agent it evolves does."""

from __future__ import annotations

import socket

from evoagent.agent.evolve.meta_agent import propose
from evoagent.agent.genome import init_genome
from fake_providers import FakeProvider, Reply


def _closed_port() -> str:
    """A loopback address nothing listens on: where the provider's default would go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_the_meta_agent_calls_the_configured_endpoint(tmp_path, monkeypatch):
    genome = tmp_path / "genome"
    init_genome(genome)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    # Were api_base ignored, the call would go here and fail, never to the internet.
    monkeypatch.setenv("OPENAI_BASE_URL", _closed_port())
    steps = [Reply(calls=[("finish", {"summary": "Diagnosis: slow\nChange: none."})])]
    with FakeProvider("openai", steps) as fake:
        proposal = propose(genome, "openai/gpt-4o-mini",
                           {"parent_id": "main", "scores": "-", "failures": "-", "archive": "-"},
                           api_base=fake.api_base)
    assert len(fake.served) == 1
    assert fake.served[0].body["model"] == "gpt-4o-mini"
    assert proposal.finished and proposal.text.startswith("Diagnosis: slow")
