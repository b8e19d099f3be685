import json

import pytest
from evoagent.sandbox.testdetect import detect_test_command

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
