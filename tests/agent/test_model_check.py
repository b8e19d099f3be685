"""The model check `fix` runs before any heavy work: model names, keys, script files, and the
one-line form of litellm's errors. Keys come from a dict passed as the environment; the CLI
tests run the real `evoagent fix` (in process, and once in a subprocess to see what it
imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import run_main
from evoagent.agent.errors import EXIT_MODEL, EXIT_USAGE, EvoError
from evoagent.agent.model_check import (
    CheckedModel,
    check_model,
    litellm_providers,
    one_line_error,
)

ISSUE = "add() subtracts"


def refused(name: str, env: dict[str, str] | None = None) -> EvoError:
    with pytest.raises(EvoError) as info:
        check_model(name, env=env or {})
    return info.value


# -- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, variable", [
    ("openai/gpt-5.4", "OPENAI_API_KEY"),
    ("gpt-4o", "OPENAI_API_KEY"),
    ("anthropic/claude-sonnet-4-6", "ANTHROPIC_API_KEY"),
    ("claude-sonnet-4-6", "ANTHROPIC_API_KEY"),
    ("gemini/gemini-2.5-pro", "GEMINI_API_KEY"),
    ("groq/llama-3.3-70b", "GROQ_API_KEY"),
    ("mistral/mistral-large-latest", "MISTRAL_API_KEY"),
    ("openrouter/anthropic/claude-sonnet-4.6", "OPENROUTER_API_KEY"),
    ("azure/my-deployment", "AZURE_API_KEY"),
])
def test_a_missing_key_is_one_line_naming_the_variable_and_exit_3(name, variable):
    error = refused(name)
    assert error.code == EXIT_MODEL
    assert error.message.startswith(f"model {name} needs {variable}")
    assert f"export {variable}=..." in error.message and "--model" in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("name, env, source", [
    ("openai/gpt-5.4", {"OPENAI_API_KEY": "sk-x"}, "OPENAI_API_KEY"),
    ("gemini/gemini-2.5-pro", {"GOOGLE_API_KEY": "g"}, "GOOGLE_API_KEY"),
    ("anthropic/claude-sonnet-4-6", {"ANTHROPIC_AUTH_TOKEN": "t"}, "ANTHROPIC_AUTH_TOKEN"),
    ("bedrock/anthropic.claude-3", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ("bedrock/anthropic.claude-3", {"AWS_PROFILE": "work"}, "AWS_PROFILE"),
])
def test_a_key_in_the_environment_passes_and_says_where_it_is(name, env, source):
    assert check_model(name, env=env) == CheckedModel(name, "configured", source)


def test_an_empty_key_counts_as_missing():
    assert refused("openai/gpt-5.4", {"OPENAI_API_KEY": "  "}).code == EXIT_MODEL


def test_bedrock_without_aws_credentials_names_them(tmp_path):
    error = refused("bedrock/anthropic.claude-3", {"HOME": str(tmp_path)})
    assert error.code == EXIT_MODEL
    assert "needs AWS credentials: export AWS_ACCESS_KEY_ID=..." in error.message


def test_an_aws_credentials_file_counts(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    checked = check_model("bedrock/anthropic.claude-3", env={"HOME": str(tmp_path)})
    assert checked.key == str(tmp_path / ".aws" / "credentials")


def test_a_key_from_the_persons_settings_counts():
    assert check_model("openai/gpt-5.4", env={}, api_key="sk-x").key == "settings"


@pytest.mark.parametrize("name", ["ollama/qwen3", "ollama_chat/qwen3:8b", "hosted_vllm/x",
                                  "someprovider/model", "vertex_ai/gemini-2.5-pro"])
def test_local_and_unknown_providers_pass_unchecked(name):
    assert check_model(name, env={}) == CheckedModel(name, "configured", None)


def test_an_unconfigured_model_is_the_first_with_a_key():
    checked = check_model(None, env={"OPENAI_API_KEY": "sk-x"})
    assert (checked.source, checked.key) == ("OPENAI_API_KEY", "OPENAI_API_KEY")
    assert checked.detail == f"{checked.name} (key from OPENAI_API_KEY)"


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, says", [
    ("antropic/claude-sonnet-4-6", "unknown provider 'antropic', did you mean anthropic/?"),
    ("opneai/gpt-5.4", "did you mean openai/?"),
    ("openai/", "needs PROVIDER/MODEL"),
    ("/gpt-5.4", "needs PROVIDER/MODEL"),
    ("openai/gpt 5", "has spaces or control characters"),
    ("openai/gpt-5\x1b[2J", "has spaces or control characters"),
])
def test_a_bad_model_name_is_one_line_and_exit_3(name, says):
    if "did you mean" in says and litellm_providers() is None:
        pytest.skip("litellm's provider list is not readable here")
    error = refused(name, {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})
    assert error.code == EXIT_MODEL and says in error.message, error.message
    assert "\x1b" not in error.message and "\n" not in error.message


def test_litellm_providers_are_read_without_importing_litellm():
    code = ("import sys; from evoagent.agent.model_check import litellm_providers; "
            "p = litellm_providers(); "
            "print(sorted({'openai', 'anthropic', 'bedrock'} & p), 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['anthropic', 'bedrock', 'openai'] False"


# -- scripted models --------------------------------------------------------------------


def test_a_missing_script_file_is_exit_3(tmp_path):
    error = refused(f"scripted/{tmp_path / 'nope.json'}")
    assert error.code == EXIT_MODEL and "no script file at" in error.message


def test_a_script_file_that_does_not_parse_is_exit_3(tmp_path):
    script = tmp_path / "steps.json"
    script.write_text("[{")
    error = refused(f"scripted/{script}")
    assert error.code == EXIT_MODEL and "is not valid" in error.message


def test_a_policy_with_a_syntax_error_or_no_respond_is_exit_3(tmp_path):
    broken, empty = tmp_path / "broken.py", tmp_path / "empty.py"
    broken.write_text("def respond(messages, tools:\n")
    empty.write_text("ANSWER = 1\n")
    assert "does not parse: SyntaxError" in refused(f"scripted/{broken}").message
    assert "has no respond(messages, tools)" in refused(f"scripted/{empty}").message


def test_a_good_policy_passes_without_being_imported(tmp_path):
    marker = tmp_path / "imported"
    policy = tmp_path / "policy.py"
    policy.write_text(f"open({str(marker)!r}, 'w').close()\n\n"
                      "def respond(messages, tools):\n    return 'ok'\n")
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps(["hello", {"tool_calls": [{"name": "finish"}]}]))
    for path in (policy, steps):
        assert check_model(f"scripted/{path}", env={}) == CheckedModel(f"scripted/{path}",
                                                                       "configured")
    assert not marker.exists()


def test_a_relative_script_path_stays_a_usage_error():
    assert refused("scripted/tools/x.py").code == EXIT_USAGE


# -- one_line_error ---------------------------------------------------------------------


class AuthenticationError(Exception):
    """Stands for litellm's class of the same name: only the name and text matter."""


class BadRequestError(Exception):
    pass


@pytest.mark.parametrize("exc, expected", [
    (AuthenticationError("litellm.AuthenticationError: AuthenticationError: OpenAIException - "
                         "Incorrect API key provided: sk-***."),
     "AuthenticationError: Incorrect API key provided: sk-***."),
    (AuthenticationError('litellm.AuthenticationError: AnthropicException - {"error": '
                         '{"message": "invalid x-api-key", "type": "authentication_error"}}'),
     "AuthenticationError: invalid x-api-key"),
    (BadRequestError("litellm.BadRequestError: LLM Provider NOT provided. You passed model=foo"
                     "\n Pass model as E.g. For 'Huggingface' inference endpoints pass in "
                     "`completion(model='huggingface/starcoder',..)` Learn more: https://x"),
     "BadRequestError: LLM Provider NOT provided. You passed model=foo"),
    (BadRequestError("litellm.BadRequestError: OpenAIException - Error code: 400 - "
                     "{'error': {'message': 'Unknown parameter', 'code': None}}\n"
                     "Received Model Group=openai/x\nAvailable Model Group Fallbacks=None"),
     "BadRequestError: Error code: 400: Unknown parameter"),
    (BadRequestError("first\n\n  second \x1b]0;title\x07line"),
     "BadRequestError: first second line"),
    (BadRequestError(""), "BadRequestError: (no message)"),
])
def test_one_line_error_condenses_litellm_text(exc, expected):
    assert one_line_error(exc) == expected


def test_one_line_error_is_bounded():
    line = one_line_error(BadRequestError("x" * 1000), limit=80)
    assert len(line) == 80 and line.endswith("...")


# -- through the CLI --------------------------------------------------------------------


@pytest.fixture
def repo(git_repo):
    git_repo.commit("Add add()", {"calc.py": "def add(a, b):\n    return a - b\n"})
    return git_repo


def test_fix_with_a_missing_key_fails_before_any_work(repo, monkeypatch, capsys):
    code, out, err = run_main(repo.path, monkeypatch, capsys,
                              "fix", "--model", "openai/gpt-5.4", ISSUE)
    assert (code, out) == (3, "")
    assert err.startswith("evoagent: model openai/gpt-5.4 needs OPENAI_API_KEY: ")
    assert err.count("\n") == 1
    state = repo.path / ".evoagent"
    for made_by_a_run in (state / "runs", state / "sandboxes", state / "agent"):
        assert not made_by_a_run.exists() or not any(made_by_a_run.iterdir())


def test_the_model_check_path_imports_neither_litellm_nor_lancedb(repo):
    code = ("import sys; sys.argv = ['evoagent', 'fix', '--model', 'anthropic/claude-x', 'bug']\n"
            "from evoagent.agent.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, 'litellm' in sys.modules, 'lancedb' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "3 False False", proc.stderr
    assert proc.stderr.startswith("evoagent: model anthropic/claude-x needs ANTHROPIC_API_KEY")
