"""Which model to use when none is configured: the first provider with a key in the
environment, else a local Ollama server, else a one-line error saying how to configure one.
The scripted provider is never picked here, and a configured `scripted/<file>` must name an
absolute path (checked here, before anything runs, and again where the file is loaded).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import EXIT_MODEL, EXIT_USAGE, EvoError

DEFAULT_MODELS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ANTHROPIC_API_KEY",), "anthropic/claude-sonnet-4-6"),
    (("OPENAI_API_KEY",), "openai/gpt-5.4"),
    (("GEMINI_API_KEY", "GOOGLE_API_KEY"), "gemini/gemini-2.5-pro"),
    (("OPENROUTER_API_KEY",), "openrouter/anthropic/claude-sonnet-4.6"),
)
"""Precedence order: (env vars, any of which enables it; litellm model name)."""

SCRIPTED_PREFIX = "scripted/"
OLLAMA_TAGS_URL = "http://127.0.0.1:11434/api/tags"
OLLAMA_PREFIX = "ollama_chat/"
PROBE_TIMEOUT_S = 0.5

NO_MODEL_HINT = (
    "no model configured: set ANTHROPIC_API_KEY (or OPENAI_API_KEY, GEMINI_API_KEY, "
    "OPENROUTER_API_KEY), run Ollama locally, or pass --model"
)


class NoModelAvailable(EvoError):
    def __init__(self, message: str = NO_MODEL_HINT):
        super().__init__(message, EXIT_MODEL)


@dataclass(frozen=True)
class ModelChoice:
    name: str
    """litellm model name."""
    source: str
    """Why it was chosen: "configured", an env var name, or "ollama"."""


def select_model(
    configured: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    ollama_url: str | None = None,
    probe_timeout: float = PROBE_TIMEOUT_S,
) -> ModelChoice:
    """The configured model, or the first available one in DEFAULT_MODELS order, then Ollama."""
    if configured:
        if configured.startswith(SCRIPTED_PREFIX):
            _check_scripted(configured.removeprefix(SCRIPTED_PREFIX))
        return ModelChoice(configured, "configured")
    env = os.environ if env is None else env
    for variables, name in DEFAULT_MODELS:
        for variable in variables:
            if env.get(variable, "").strip():
                return ModelChoice(name, variable)
    models = ollama_models(ollama_url or ollama_tags_url(env), probe_timeout)
    if models:
        return ModelChoice(OLLAMA_PREFIX + models[0], "ollama")
    if models is not None:
        raise NoModelAvailable(
            f"{NO_MODEL_HINT} (Ollama is running but has no models: ollama pull)"
        )
    raise NoModelAvailable()


def _check_scripted(name: str) -> None:
    """A script file loads (a policy: imports) code into evoagent; refuse a relative path,
    which would resolve into whatever repository evoagent runs in."""
    from .scripted_provider import ScriptError, check_name

    try:
        check_name(name)
    except ScriptError as exc:
        raise EvoError(str(exc), EXIT_USAGE) from exc


def ollama_tags_url(env: Mapping[str, str]) -> str:
    """Ollama's model list, at OLLAMA_HOST (as Ollama itself reads it) or the default."""
    host = env.get("OLLAMA_HOST", "").strip().rstrip("/")
    if not host:
        return OLLAMA_TAGS_URL
    if "://" not in host:
        host = "http://" + host
    return f"{host}/api/tags"


def ollama_models(url: str = OLLAMA_TAGS_URL, timeout: float = PROBE_TIMEOUT_S) -> list[str] | None:
    """Model names an Ollama server lists, or None when no server answers at `url`."""
    # No proxy: the server is local, and an HTTP(S)_PROXY from the environment would
    # otherwise turn a quick refusal into a slow (and wrong) round trip.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            data = json.load(response)
    except (OSError, ValueError):  # refused, timed out, HTTP error, not JSON
        return None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    names = [e.get("name") or e.get("model") for e in entries if isinstance(e, dict)]
    return [n for n in names if isinstance(n, str) and n]
