"""Check the model before any heavy work: its name, the key it needs, its script file.

`fix` runs this first, so a typo in the model name or a missing key is one line and exit 3
within a second, not after a workspace, the baseline tests and a 4-second `import litellm`.
Nothing here imports litellm: which environment variables hold a provider's key is a table
(`PROVIDER_KEYS`, names as litellm reads them), and litellm's own provider list, needed only
to tell a misspelt provider from one this table does not know, is read from its source
without importing it. A provider the table does not know passes: litellm may know it, and
the first call will say. `one_line_error` condenses litellm's multi-line errors to one line.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import EXIT_MODEL, EvoError
from .model_select import SCRIPTED_PREFIX, select_model
from .terminal_text import one_line

PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "text-completion-openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY", "OR_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY",
                    "TOGETHER_AI_TOKEN"),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY",
                     "FIREWORKS_AI_TOKEN"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "cohere_chat": ("COHERE_API_KEY", "CO_API_KEY"),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "cerebras": ("CEREBRAS_API_KEY",),
    "deepinfra": ("DEEPINFRA_API_KEY",),
    "nvidia_nim": ("NVIDIA_NIM_API_KEY",),
    "huggingface": ("HUGGINGFACE_API_KEY", "HF_TOKEN"),
    # Azure also signs in through Entra ID (a service principal, a managed identity, a
    # federated token); any of those variables counts, the first call checks the rest.
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN", "AZURE_CLIENT_SECRET",
              "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"),
}
"""Provider prefix → environment variables, any one of which holds its key (as litellm reads
them). Providers missing here pass unchecked."""

AWS_PROVIDERS = frozenset({"bedrock", "sagemaker", "sagemaker_chat"})
AWS_ENV = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("AWS_PROFILE",), ("AWS_ROLE_ARN",),
           ("AWS_WEB_IDENTITY_TOKEN_FILE",), ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),
           ("AWS_CONTAINER_CREDENTIALS_FULL_URI",), ("AWS_BEARER_TOKEN_BEDROCK",))
"""Ways boto3 finds AWS credentials in the environment: every variable of one group set."""

NO_KEY = frozenset({"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"})
"""Local servers: no key to check."""

BARE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"), ("chatgpt-", "openai"), ("ft:gpt-", "openai"), ("o1", "openai"),
    ("o3", "openai"), ("o4", "openai"), ("claude-", "anthropic"),
)
"""A name without a provider prefix: litellm routes these by its model list."""

HOW_TO_CHOOSE = "or choose another model with --model or EVOAGENT_MODEL"


@dataclass(frozen=True)
class CheckedModel:
    name: str
    """litellm model name."""
    source: str
    """Why this model: "configured", the env var that picked it, or "ollama"."""
    key: str | None = None
    """Where its key comes from (an env var, "AWS credentials", "settings"); None when it
    needs none or the provider is not one this module knows."""

    @property
    def detail(self) -> str:
        """One line for a `Phase("model_check")` event."""
        return self.name + (f" (key from {self.key})" if self.key else "")


def check_model(
    configured: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    api_key: str | None = None,
) -> CheckedModel:
    """The model a run will use, checked: the configured one, else the first available
    (`select_model`). `api_key` is a key the person's settings give for it. Raises EvoError
    (exit 3) naming what is missing and how to set it; exit 2 for a scripted model named
    by a relative path (`select_model`'s rule)."""
    env = os.environ if env is None else env
    if not configured:
        choice = select_model(None, env=env)
        return CheckedModel(choice.name, choice.source, _key_source(choice.name, env, api_key))
    name = configured
    _check_name(name)
    if name.startswith(SCRIPTED_PREFIX):
        select_model(name)  # a relative script path: refused there, exit 2
        check_script(name.removeprefix(SCRIPTED_PREFIX))
        return CheckedModel(name, "configured")
    return CheckedModel(name, "configured", _key_source(name, env, api_key))


def provider_of(name: str) -> str | None:
    """The provider litellm would route `name` to, when this module can tell."""
    prefix, slash, _ = name.partition("/")
    if slash:
        return prefix
    for start, provider in BARE_PREFIXES:
        if name.startswith(start):
            return provider
    return None


def _check_name(name: str) -> None:
    shown = one_line(name, 120)
    if not name.strip():
        raise EvoError("the model name is empty: pass --model PROVIDER/MODEL "
                       "(e.g. anthropic/claude-sonnet-4-6)", EXIT_MODEL)
    scripted = name.startswith(SCRIPTED_PREFIX)  # a script's path may hold a space
    if any(not ch.isprintable() or (ch.isspace() and not scripted) for ch in name):
        raise EvoError(f"model name {shown!r} has spaces or control characters", EXIT_MODEL)
    prefix, slash, rest = name.partition("/")
    if slash and (not prefix or not rest.strip("/")):
        raise EvoError(f"model name {shown!r} needs PROVIDER/MODEL "
                       "(e.g. openai/gpt-5.4)", EXIT_MODEL)
    if slash and not scripted:
        _check_provider(prefix, shown)


def _check_provider(prefix: str, shown: str) -> None:
    """A provider neither litellm nor this module knows, but close to one this module knows,
    is a typo; anything else unknown passes (a model name may itself hold a slash)."""
    known = litellm_providers()
    if known is None or prefix in known or prefix in PROVIDER_KEYS or prefix in NO_KEY:
        return
    close = difflib.get_close_matches(prefix, [*PROVIDER_KEYS, *NO_KEY, *AWS_PROVIDERS],
                                      n=1, cutoff=0.8)
    if close:
        raise EvoError(f"model {shown}: unknown provider {one_line(prefix, 60)!r}, did you "
                       f"mean {close[0]}/? ({HOW_TO_CHOOSE})", EXIT_MODEL)


def _key_source(name: str, env: Mapping[str, str], api_key: str | None) -> str | None:
    """Where the model's key comes from; raises EvoError when the provider needs one and
    none is set."""
    provider = provider_of(name)
    if provider is None or provider in NO_KEY:
        return None
    if api_key and api_key.strip():
        return "settings"
    if provider in AWS_PROVIDERS:
        return _aws_source(name, env)
    variables = PROVIDER_KEYS.get(provider)
    if variables is None:
        return None
    for variable in variables:
        if env.get(variable, "").strip():
            return variable
    others = f" (or {', '.join(variables[1:3])})" if len(variables) > 1 else ""
    raise EvoError(f"model {one_line(name, 120)} needs {variables[0]}{others}: "
                   f"export {variables[0]}=..., {HOW_TO_CHOOSE}", EXIT_MODEL)


def _aws_source(name: str, env: Mapping[str, str]) -> str:
    for group in AWS_ENV:
        if all(env.get(v, "").strip() for v in group):
            return " and ".join(group)
    home = Path(env.get("HOME") or Path.home())
    for variable, default in (("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials"),
                              ("AWS_CONFIG_FILE", home / ".aws" / "config")):
        if Path(env.get(variable) or default).is_file():
            return str(Path(env.get(variable) or default))
    raise EvoError(f"model {one_line(name, 120)} needs AWS credentials: export "
                   "AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... (or AWS_PROFILE=...), "
                   f"{HOW_TO_CHOOSE}", EXIT_MODEL)


def check_script(name: str) -> None:
    """A scripted model's file exists and parses: a step file (JSON/YAML) loads, a policy
    (`.py`) is valid Python defining `respond`, checked without importing it. A name that
    is not a file's (a script registered in-process, like the demo's) passes."""
    from .scripted_provider import POLICY_SUFFIX, ScriptError, load_steps, script_file

    try:
        path = script_file(name)
        if path is None:
            return
        if not path.is_file():
            raise ScriptError(f"scripted model: no script file at {path}")
        if name.endswith(POLICY_SUFFIX):
            _check_policy(path, ScriptError)
        else:
            load_steps(path)
    except ScriptError as exc:
        raise EvoError(one_line(str(exc)), EXIT_MODEL) from exc


def _check_policy(path: Path, error: type[Exception]) -> None:
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise error(f"policy {path} does not parse: {type(exc).__name__}: {exc}") from exc
    if "respond" not in _top_level_names(tree):
        raise error(f"policy {path} has no respond(messages, tools) function")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


_PROVIDER_ENUM = re.compile(r"^class LlmProviders\(.*?\n(?=\S)", re.S | re.M)
_ENUM_VALUE = re.compile(r'^\s+\w+\s*=\s*"([^"]+)"', re.M)


@functools.cache
def litellm_providers() -> frozenset[str] | None:
    """litellm's provider names, read from its source (`LlmProviders` in types/utils.py)
    without importing it; None when that cannot be read (then no name counts as a typo)."""
    try:
        spec = importlib.util.find_spec("litellm")  # a top-level spec: nothing is executed
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            return None
        text = (Path(locations[0]) / "types" / "utils.py").read_text(errors="replace")
    except (OSError, ImportError, ValueError):
        return None
    block = _PROVIDER_ENUM.search(text)
    names = frozenset(_ENUM_VALUE.findall(block.group())) if block else frozenset()
    return names or None


_LITELLM_PREFIX = re.compile(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout)\s*:\s*")
_PROVIDER_EXCEPTION = re.compile(r"^\w+Exception\s+-\s+")
_NOISE = re.compile(
    r"^(?:Received Model Group=|Available Model Group Fallbacks=|LiteLLM Retried:|"
    r"Learn more:|model=\S+\. context_window_fallbacks=|Pass model as E\.g\.)"
)


def one_line_error(exc: BaseException, limit: int = 300) -> str:
    """litellm's exception text as one terminal-safe line: `Kind: message`. Drops litellm's
    repeated `litellm.XError: XError:` prefixes, the provider's `OpenAIException - ` tag,
    its retry and fallback footer lines; a JSON error body becomes its `message`."""
    lines = []
    for raw in str(exc).strip().splitlines():
        line = raw.strip()
        previous = None
        while line != previous:
            previous = line
            line = _PROVIDER_EXCEPTION.sub("", _LITELLM_PREFIX.sub("", line))
        if line and not _NOISE.match(line):
            lines.append(_json_message(line))
    text = " ".join(lines) or "(no message)"
    return one_line(f"{type(exc).__name__}: {text}", limit)


def _json_message(line: str) -> str:
    """`{"error": {"message": "..."}}` (a provider's error body) → its message."""
    start = line.find("{")
    if start < 0:
        return line
    try:
        body = json.loads(line[start:])
    except ValueError:
        try:
            body = ast.literal_eval(line[start:])  # litellm often prints the dict's repr
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return line
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        return line
    return (line[:start].rstrip(" -:") + ": " + message).lstrip(": ")
