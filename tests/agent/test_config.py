"""Settings precedence: defaults < user config < pyproject < .evoagent/config.toml < env < CLI."""

from __future__ import annotations

import pytest
from evoagent.agent.config import Settings, load_settings, store_uri, user_config_path
from evoagent.agent.errors import EvoError
from evoagent.agent.state import RepoState

LAYERS = ["user", "pyproject", "repo", "env", "cli"]


@pytest.fixture
def state(tmp_path) -> RepoState:
    """A repo root with an empty .evoagent/ (load_settings reads files, not git)."""
    root = tmp_path / "repo"
    (root / ".evoagent").mkdir(parents=True)
    return RepoState(root)


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def set_layer(layer: str, state: RepoState, monkeypatch, model: str) -> dict:
    """Set `model` in one layer; returns the CLI overrides (non-empty only for 'cli')."""
    if layer == "user":
        _write(user_config_path(), f'model = "{model}"\n')
    elif layer == "pyproject":
        _write(
            state.root / "pyproject.toml",
            f'[project]\nname = "x"\n\n[tool.evoagent]\nmodel = "{model}"\n',
        )
    elif layer == "repo":
        _write(state.config_file, f'model = "{model}"\n')
    elif layer == "env":
        monkeypatch.setenv("EVOAGENT_MODEL", model)
    elif layer == "cli":
        return {"model": model}
    return {}


def test_defaults(state):
    settings = load_settings(state)
    assert settings == Settings()
    assert (settings.model, settings.embedding, settings.store, settings.mine_batch) == (
        None,
        "none",
        None,
        2000,
    )
    assert store_uri(state, settings) == str(state.root / ".evoagent" / "memory")


def test_user_config_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_path() == tmp_path / "xdg" / "evoagent" / "config.toml"


@pytest.mark.parametrize("top", LAYERS)
def test_each_layer_beats_the_ones_below(state, monkeypatch, top):
    overrides: dict = {}
    for layer in LAYERS[: LAYERS.index(top) + 1]:
        overrides |= set_layer(layer, state, monkeypatch, f"model-from-{layer}")
    assert load_settings(state, overrides).model == f"model-from-{top}"


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_alone_beats_defaults(state, monkeypatch, layer):
    overrides = set_layer(layer, state, monkeypatch, f"only-{layer}")
    assert load_settings(state, overrides).model == f"only-{layer}"


def test_layers_merge_per_key(state, monkeypatch):
    _write(user_config_path(), 'model = "user-model"\nembedding = "hash:16"\n')
    _write(state.config_file, 'test_command = "make test"\n')
    monkeypatch.setenv("EVOAGENT_MINE_BATCH", "7")
    settings = load_settings(state, {"store": "/tmp/shared", "model": None})
    assert settings.model == "user-model"
    assert settings.embedding == "hash:16"
    assert settings.test_command == "make test"
    assert settings.mine_batch == 7
    assert settings.store == "/tmp/shared"
    assert store_uri(state, settings) == "/tmp/shared"


def test_cli_none_does_not_override(state, monkeypatch):
    monkeypatch.setenv("EVOAGENT_MODEL", "env-model")
    assert load_settings(state, {"model": None}).model == "env-model"


def test_empty_env_var_is_ignored(state, monkeypatch):
    _write(state.config_file, 'model = "repo-model"\n')
    monkeypatch.setenv("EVOAGENT_MODEL", "")
    assert load_settings(state).model == "repo-model"


def test_default_config_file_is_valid_and_changes_nothing(git_repo):
    state = RepoState(git_repo.path).ensure()
    assert state.config_file.read_text().startswith("# evoagent settings")
    assert load_settings(state) == Settings()


def test_pyproject_without_evoagent_table(state):
    _write(state.root / "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 90\n')
    assert load_settings(state) == Settings()


@pytest.mark.parametrize("where", ["user", "pyproject", "repo"])
def test_invalid_toml_names_the_file(state, where):
    path = {
        "user": user_config_path(),
        "pyproject": state.root / "pyproject.toml",
        "repo": state.config_file,
    }[where]
    _write(path, 'model = "unterminated\n')
    with pytest.raises(EvoError) as info:
        load_settings(state)
    assert info.value.message.startswith(f"{path}: invalid TOML")
    assert info.value.code == 2
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    "layer, source",
    [
        ("user", "USER"),
        ("pyproject", "pyproject.toml [tool.evoagent]"),
        ("repo", "REPO"),
        ("cli", "command line"),
    ],
)
def test_unknown_key_names_its_source(state, monkeypatch, layer, source):
    source = {"USER": str(user_config_path()), "REPO": str(state.config_file)}.get(source, source)
    overrides = {}
    if layer == "user":
        _write(user_config_path(), 'modle = "typo"\n')
    elif layer == "pyproject":
        _write(state.root / "pyproject.toml", '[tool.evoagent]\nmodle = "typo"\n')
    elif layer == "repo":
        _write(state.config_file, 'modle = "typo"\n')
    else:
        overrides = {"modle": "typo"}
    with pytest.raises(EvoError) as info:
        load_settings(state, overrides)
    assert info.value.message.startswith(f"{source}: setting 'modle'")
    assert info.value.code == 2


def test_bad_value_names_the_environment(state, monkeypatch):
    monkeypatch.setenv("EVOAGENT_MINE_BATCH", "0")
    with pytest.raises(EvoError) as info:
        load_settings(state)
    assert info.value.message.startswith("environment: setting 'mine_batch'")


def test_bad_type_names_the_file(state):
    _write(state.config_file, 'mine_batch = "lots"\n')
    with pytest.raises(EvoError) as info:
        load_settings(state)
    assert info.value.message.startswith(f"{state.config_file}: setting 'mine_batch'")


def test_unrelated_env_vars_are_ignored(state, monkeypatch):
    monkeypatch.setenv("EVOAGENT_NOT_A_SETTING", "x")
    assert load_settings(state) == Settings()
