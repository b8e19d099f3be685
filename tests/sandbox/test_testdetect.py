import json

import pytest
from evoagent.sandbox.testdetect import TestCommand, describe_test_command, detect_test_command

CASES = [
    ({"pyproject.toml": "[project]\nname='x'\n"}, ("python", "-m", "pytest"), "pytest"),
    ({"setup.cfg": "[metadata]\n"}, ("python", "-m", "pytest"), "pytest"),
    ({"pytest.ini": "[pytest]\n"}, ("python", "-m", "pytest"), "pytest"),
    ({"tox.ini": "[tox]\n"}, ("python", "-m", "pytest"), "pytest"),
    ({"package.json": json.dumps({"scripts": {"test": "jest"}})}, ("npm", "test"), "npm"),
    ({"Makefile": "build:\n\tcc x.c\ntest: build\n\t./run\n"}, ("make", "test"), "make"),
    ({"go.mod": "module x\n"}, ("go", "test", "./..."), "go"),
    ({"Cargo.toml": "[package]\n"}, ("cargo", "test"), "cargo"),
]


@pytest.mark.parametrize("files, argv, kind", CASES, ids=[next(iter(c[0])) for c in CASES])
def test_detects_each_ecosystem(tmp_path, files, argv, kind):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    command = detect_test_command(tmp_path)
    assert (command.argv, command.kind, command.source) == (argv, kind, next(iter(files)))


def test_configured_command_wins(tmp_path):
    (tmp_path / "go.mod").write_text("module x\n")
    command = detect_test_command(tmp_path, "python -m pytest -x tests/unit")
    assert command.argv == ("python", "-m", "pytest", "-x", "tests/unit")
    assert (command.kind, command.source) == ("pytest", "config")
    assert detect_test_command(tmp_path, "./ci/test.sh").kind == "custom"


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"package.json": json.dumps({"scripts": {"test": 'echo "Error: no test specified"'}})},
        {"Makefile": "TEST := 1\ntests:\n\ttrue\n"},
    ],
    ids=["nothing", "npm-placeholder", "make-without-test-target"],
)
def test_nothing_detected(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert detect_test_command(tmp_path) is None


# -- Python repositories without pytest configuration -----------------------------------

PYTEST = ("python", "-m", "pytest")


@pytest.mark.parametrize(
    "files, source",
    [
        ({"calc.py": "", "test_calc.py": ""}, "test_calc.py"),
        ({"calc.py": "", "calc_test.py": ""}, "calc_test.py"),
        ({"calc.py": "", "tests/test_calc.py": ""}, "tests/test_calc.py"),
        ({"pkg/calc.py": "", "test/unit/calc_test.py": ""}, "test/unit/calc_test.py"),
        ({"conftest.py": "", "checks/check_calc.py": ""}, "conftest.py"),
        ({"setup.py": "from setuptools import setup\nsetup()\n"}, "setup.py"),
    ],
    ids=["top-level", "suffix", "tests-dir", "nested-test-dir", "conftest", "setup.py"],
)
def test_python_repo_without_config_gets_pytest(tmp_path, files, source):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    command = detect_test_command(tmp_path)
    assert command is not None, "a Python repository with tests must get pytest"
    assert (command.argv, command.kind, command.source) == (PYTEST, "pytest", source)


def test_pytest_configuration_beats_a_test_file(tmp_path):
    (tmp_path / "test_calc.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert detect_test_command(tmp_path).source == "pyproject.toml"


@pytest.mark.parametrize(
    "files, kind",
    [
        ({"go.mod": "module x\n", "test_gen.py": ""}, "go"),
        ({"Makefile": "test:\n\t./run\n", "tests/test_x.py": ""}, "make"),
    ],
    ids=["go", "make"],
)
def test_another_ecosystem_beats_a_stray_python_test_file(tmp_path, files, kind):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert detect_test_command(tmp_path).kind == kind


@pytest.mark.parametrize(
    "files",
    [
        {"calc.py": "", "test.py": "", "testing.py": "", "mytest.py": ""},
        {"src/test_calc.py": ""},  # test files elsewhere are not looked for
        {"tests/test_calc.txt": "", "tests/data/README": ""},
    ],
    ids=["names-that-are-not-tests", "outside-the-test-dirs", "no-python-files"],
)
def test_python_files_that_are_not_tests_detect_nothing(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert detect_test_command(tmp_path) is None


def test_the_walk_never_follows_a_link_out_of_the_repository(tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "test_secret.py").write_text("")
    (outside / "test_top.py").write_text("")
    repo = tmp_path / "repo"
    (repo / "test").mkdir(parents=True)
    (repo / "tests").symlink_to(outside)
    (repo / "test" / "deep").symlink_to(outside / "deep")
    (repo / "test_link.py").symlink_to(outside / "test_top.py")
    assert detect_test_command(repo) is None


def test_the_walk_is_bounded(tmp_path, monkeypatch):
    from evoagent.sandbox import testdetect

    tests = tmp_path / "tests"
    tests.mkdir()
    for n in range(30):
        (tests / f"data_{n:02}.json").write_text("")
    (tests / "zz").mkdir()
    (tests / "zz" / "test_late.py").write_text("")
    monkeypatch.setattr(testdetect, "WALK_LIMIT", 20)
    assert detect_test_command(tmp_path) is None  # gave up before reaching it
    monkeypatch.setattr(testdetect, "WALK_LIMIT", 100)
    assert detect_test_command(tmp_path).source == "tests/zz/test_late.py"


def test_deep_directories_are_not_walked(tmp_path):
    deep = tmp_path / "tests" / "a" / "b" / "c" / "d" / "e" / "f"
    deep.mkdir(parents=True)
    (deep / "test_deep.py").write_text("")
    assert detect_test_command(tmp_path) is None


# -- the line a front end prints --------------------------------------------------------


def test_the_line_says_which_command_and_from_what(tmp_path):
    (tmp_path / "test_calc.py").write_text("")
    detected = detect_test_command(tmp_path)
    assert describe_test_command(detected) == "python -m pytest (detected from test_calc.py)"
    configured = detect_test_command(tmp_path, "pytest -k 'not slow'")
    assert describe_test_command(configured) == "pytest -k 'not slow' (configured)"
    missing = describe_test_command(None)
    assert missing.startswith("no test command found: ")
    assert "test_command" in missing and "\n" not in missing
    # An event carries argv and source; the same line comes back from them.
    assert TestCommand.of(list(detected.argv), detected.source) == detected
    assert TestCommand.of([], "") is None
