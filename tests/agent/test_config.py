"""Settings precedence: defaults < user config < pyproject < .evoagent/config.toml < env < CLI,
and who may set what (the repository's own files only the keys WHO_MAY_SET allows)."""

from __future__ import annotations

import subprocess

import pytest
from evoagent.agent.config import (
    PERSON_ONLY,
    WHO_MAY_SET,
    Settings,
    Who,
    load_settings,
    store_uri,
    user_config_path,
)
from evoagent.agent.errors import EvoError
from evoagent.agent.state import RepoState

LAYERS = ["user", "pyproject", "repo", "env", "cli"]
PERSON_LAYERS = ["user", "repo", "env", "cli"]
"""Where the person sets things: `repo` is an .evoagent/config.toml git does not track."""


@pytest.fixture
def state(tmp_path) -> RepoState:
    """A git work tree with an empty, untracked .evoagent/ (git decides whose the repo
    config is)."""
    root = tmp_path / "repo"
    (root / ".evoagent").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return RepoState(root)


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def set_layer(layer: str, state: RepoState, monkeypatch, value: str, key: str = "test_command"
              ) -> dict:
    """Set `key` in one layer; returns the CLI overrides (non-empty only for 'cli')."""
    if layer == "user":
        _write(user_config_path(), f'{key} = "{value}"\n')
    elif layer == "pyproject":
        _write(
            state.root / "pyproject.toml",
            f'[project]\nname = "x"\n\n[tool.evoagent]\n{key} = "{value}"\n',
        )
    elif layer == "repo":
        _write(state.config_file, f'{key} = "{value}"\n')
    elif layer == "env":
        monkeypatch.setenv(f"EVOAGENT_{key.upper()}", value)
    elif layer == "cli":
        return {key: value}
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
        overrides |= set_layer(layer, state, monkeypatch, f"from-{layer}")
    assert load_settings(state, overrides).test_command == f"from-{top}"


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_alone_beats_defaults(state, monkeypatch, layer):
    overrides = set_layer(layer, state, monkeypatch, f"only-{layer}")
    assert load_settings(state, overrides).test_command == f"only-{layer}"


@pytest.mark.parametrize("top", PERSON_LAYERS)
def test_the_persons_layers_keep_their_order_for_person_only_keys(state, monkeypatch, top):
    overrides: dict = {}
    for layer in PERSON_LAYERS[: PERSON_LAYERS.index(top) + 1]:
        overrides |= set_layer(layer, state, monkeypatch, f"model-from-{layer}", "model")
    assert load_settings(state, overrides).model == f"model-from-{top}"


# -- who may set what ------------------------------------------------------------------------


def test_every_setting_is_classified():
    """A new Settings field must say whether a repository may set it (the module refuses to
    import otherwise; this names the field)."""
    assert set(WHO_MAY_SET) == set(Settings.model_fields)
    assert all(isinstance(who, Who) and reason for who, reason in WHO_MAY_SET.values())


def test_what_only_the_person_may_set():
    """Anything that picks code, a model or endpoint, or where data goes."""
    assert {"model", "embedding", "store", "api_base", "context_limit"} == PERSON_ONLY


PERSON_VALUES = {"model": "scripted/tools/x.py", "embedding": "litellm:text-embedding-3-small",
                 "store": "s3://elsewhere/memory", "api_base": "http://127.0.0.1:8000/v1",
                 "context_limit": "8192"}


@pytest.mark.parametrize("key", sorted(PERSON_ONLY))
def test_pyproject_may_not_set_a_person_only_key(state, monkeypatch, capsys, key):
    set_layer("pyproject", state, monkeypatch, PERSON_VALUES[key], key)
    assert load_settings(state) == Settings()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"evoagent: ignoring {key!r} from {state.root / 'pyproject.toml'} "
                          "[tool.evoagent]: a repository may not set it")


@pytest.mark.parametrize("key", sorted(PERSON_ONLY))
@pytest.mark.parametrize("layer", PERSON_LAYERS)
def test_the_person_sets_person_only_keys_silently(state, monkeypatch, capsys, key, layer):
    overrides = set_layer(layer, state, monkeypatch, PERSON_VALUES[key], key)
    assert str(getattr(load_settings(state, overrides), key)) == PERSON_VALUES[key]
    assert capsys.readouterr().err == ""


def test_repository_keys_from_pyproject_are_kept_silently(state, capsys):
    _write(state.root / "pyproject.toml",
           '[tool.evoagent]\ntest_command = "make check"\nmine_batch = 10\nvenv = "env"\n')
    settings = load_settings(state)
    assert (settings.test_command, settings.mine_batch, settings.venv) == ("make check", 10, "env")
    assert capsys.readouterr().err == ""


def _commit(root, *paths: str) -> None:
    subprocess.run(["git", "-C", str(root), "add", "-f", *paths], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "x"], check=True)


def test_a_tracked_repo_config_is_the_repositorys(state, capsys):
    _write(state.config_file, 'model = "repo-model"\ntest_command = "make check"\n')
    _commit(state.root, ".evoagent/config.toml")
    settings = load_settings(state)
    assert (settings.model, settings.test_command) == (None, "make check")
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"evoagent: ignoring 'model' from {state.config_file} (tracked by git)")


def test_a_staged_repo_config_is_the_repositorys_too(state, capsys):
    _write(state.config_file, 'store = "/tmp/elsewhere"\n')
    subprocess.run(["git", "-C", str(state.root), "add", "-f", ".evoagent/config.toml"],
                   check=True)
    assert load_settings(state).store is None
    assert "ignoring 'store'" in capsys.readouterr().err


def test_a_repo_config_behind_a_tracked_symlink_is_the_repositorys(state, tmp_path, capsys):
    """`git ls-files .evoagent/config.toml` says nothing when `.evoagent` itself is a
    committed symlink; its parents are checked too."""
    real = state.root / "settings"
    _write(real / "config.toml", 'model = "repo-model"\n')
    state.dir.rmdir()
    state.dir.symlink_to("settings")
    _commit(state.root, ".evoagent", "settings")
    assert load_settings(state).model is None
    # the repository's file, and behind a link: not even read
    assert ".evoagent is not a directory" in capsys.readouterr().err


def test_outside_a_git_work_tree_the_repo_config_counts_as_the_repositorys(tmp_path, capsys):
    root = tmp_path / "plain"
    _write(root / ".evoagent" / "config.toml", 'model = "m"\n')
    assert load_settings(RepoState(root)).model is None
    assert "ignoring 'model'" in capsys.readouterr().err


@pytest.mark.parametrize("venv", ["/opt/venv", "../outside", "inside/../../outside", "link"])
def test_a_repository_venv_must_stay_inside_it(state, tmp_path, capsys, venv):
    (tmp_path / "outside").mkdir()
    (state.root / "link").symlink_to(tmp_path / "outside")
    _write(state.root / "pyproject.toml", f'[tool.evoagent]\nvenv = "{venv}"\n')
    assert load_settings(state).venv is None
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("evoagent: ignoring 'venv' from ")
    assert "inside the repository" in line


def test_the_persons_venv_may_be_anywhere(state, monkeypatch, capsys):
    monkeypatch.setenv("EVOAGENT_VENV", "/opt/venv")
    assert load_settings(state).venv == "/opt/venv"
    assert capsys.readouterr().err == ""


def test_a_symlinked_pyproject_is_not_followed(state, tmp_path, capsys):
    secret = tmp_path / "secret.toml"
    secret.write_text('[tool.evoagent]\ntest_command = "SECRET-BYTES"\n')
    (state.root / "pyproject.toml").symlink_to(secret)
    assert load_settings(state) == Settings()
    err = capsys.readouterr().err
    assert err.startswith("evoagent: not reading settings from ") and err.count("\n") == 1
    assert "SECRET" not in err


def test_the_warning_is_printed_once_per_process(state, capsys):
    _write(state.root / "pyproject.toml", '[tool.evoagent]\nstore = "/elsewhere"\n')
    load_settings(state)
    load_settings(state)
    assert capsys.readouterr().err.count("ignoring 'store'") == 1


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
        ("pyproject", "PYPROJECT"),
        ("repo", "REPO"),
        ("cli", "command line"),
    ],
)
def test_unknown_key_names_its_source(state, monkeypatch, layer, source):
    source = {"USER": str(user_config_path()), "REPO": str(state.config_file),
              "PYPROJECT": f"{state.root / 'pyproject.toml'} [tool.evoagent]"}.get(source, source)
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


@pytest.mark.parametrize("tracked", [False, True])
def test_mcp_servers_in_the_repo_config_are_not_settings(state, capsys, tracked):
    """agent/mcp_config.py reads `[mcp_servers.NAME]`; the settings load around it."""
    _write(state.config_file, 'test_command = "make check"\n\n[mcp_servers.docs]\n'
                              'command = "docs-server"\n')
    if tracked:
        _commit(state.root, ".evoagent/config.toml")
    assert load_settings(state).test_command == "make check"
    assert capsys.readouterr().err == ""


def test_mcp_servers_elsewhere_are_an_unknown_setting(state):
    _write(state.root / "pyproject.toml", '[tool.evoagent.mcp_servers.docs]\ncommand = "x"\n')
    with pytest.raises(EvoError, match=r"\[tool.evoagent\]: setting 'mcp_servers': Extra inputs"):
        load_settings(state)
