"""Model selection: env keys in order, then a local Ollama server (a loopback HTTP server here)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from evoagent.agent.errors import EXIT_MODEL
from evoagent.agent.model_select import (
    DEFAULT_MODELS,
    NO_MODEL_HINT,
    NoModelAvailable,
    ollama_models,
    select_model,
)


@pytest.fixture
def closed_url():
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/tags"


@pytest.fixture
def ollama():
    """ollama(body) -> URL of a loopback server answering /api/tags with `body`."""
    servers = []

    def start(body: object, status: int = 200) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status if self.path == "/api/tags" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/api/tags"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


TAGS = {"models": [{"name": "qwen3:8b", "model": "qwen3:8b"}, {"name": "llama3.2:latest"}]}


@pytest.mark.parametrize(
    ("env", "expected", "source"),
    [
        (
            {"OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a"},
            "anthropic/claude-sonnet-4-6",
            "ANTHROPIC_API_KEY",
        ),
        ({"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g"}, "openai/gpt-5.4", "OPENAI_API_KEY"),
        (
            {"GOOGLE_API_KEY": "g", "OPENROUTER_API_KEY": "r"},
            "gemini/gemini-2.5-pro",
            "GOOGLE_API_KEY",
        ),
        (
            {"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "g2"},
            "gemini/gemini-2.5-pro",
            "GEMINI_API_KEY",
        ),
        (
            {"OPENROUTER_API_KEY": "r"},
            "openrouter/anthropic/claude-sonnet-4.6",
            "OPENROUTER_API_KEY",
        ),
        ({"ANTHROPIC_API_KEY": "  ", "OPENAI_API_KEY": "o"}, "openai/gpt-5.4", "OPENAI_API_KEY"),
    ],
)
def test_env_key_precedence(env, expected, source, ollama):
    url = ollama(TAGS)  # a running Ollama does not beat a key
    choice = select_model(env=env, ollama_url=url)
    assert (choice.name, choice.source) == (expected, source)


def test_defaults_live_in_one_table():
    assert [names[0] for names, _ in DEFAULT_MODELS] == [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
    ]


def test_configured_model_wins(closed_url):
    choice = select_model("ollama_chat/mine", env={"ANTHROPIC_API_KEY": "a"}, ollama_url=closed_url)
    assert (choice.name, choice.source) == ("ollama_chat/mine", "configured")


def test_process_environment_is_read_by_default(monkeypatch, closed_url):
    monkeypatch.setenv("OPENROUTER_API_KEY", "r")
    assert select_model(ollama_url=closed_url).source == "OPENROUTER_API_KEY"


def test_ollama_first_model_is_picked(ollama):
    url = ollama(TAGS)
    choice = select_model(env={}, ollama_url=url)
    assert (choice.name, choice.source) == ("ollama_chat/qwen3:8b", "ollama")
    assert ollama_models(url) == ["qwen3:8b", "llama3.2:latest"]


def test_ollama_without_models_says_so(ollama):
    url = ollama({"models": []})
    with pytest.raises(NoModelAvailable, match=r"Ollama is running but has no models"):
        select_model(env={}, ollama_url=url)


@pytest.mark.parametrize(("body", "status"), [(b"<html>not ollama</html>", 200), (TAGS, 500)])
def test_something_else_on_the_port_is_not_ollama(ollama, body, status):
    assert ollama_models(ollama(body, status)) is None


def test_nothing_available_is_one_clear_line(closed_url):
    started = time.monotonic()
    with pytest.raises(NoModelAvailable) as raised:
        select_model(env={}, ollama_url=closed_url)
    assert time.monotonic() - started < 2
    assert raised.value.message == NO_MODEL_HINT
    assert raised.value.message == (
        "no model configured: set ANTHROPIC_API_KEY (or OPENAI_API_KEY, GEMINI_API_KEY, "
        "OPENROUTER_API_KEY), run Ollama locally, or pass --model"
    )
    assert "\n" not in raised.value.message
    assert raised.value.code == EXIT_MODEL


def test_probe_ignores_proxy_settings(ollama, monkeypatch):
    url = ollama(TAGS)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert ollama_models(url) == ["qwen3:8b", "llama3.2:latest"]
