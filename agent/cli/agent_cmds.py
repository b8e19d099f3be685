"""Agent commands: fix (headless, for CI) and demo."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from ..errors import EvoError
from ..events import Event
from ..repo_context import RepoContext
from ..terminal_text import one_line
from .output import echo, emit_json, emit_json_line

FORMATS = click.Choice(["text", "json", "stream-json"])
ISSUE_FILE_SUFFIXES = (".md", ".txt", ".json")
"""An ISSUE argument ending so is meant as a file, even without a slash."""
PHASE_LABELS = {
    "model_check": "model",
    "workspace": "workspace",
    "baseline_tests": "baseline tests",
    "locating": "locating",
    "model_call": "calling the model",
    "compacting": "compacting the conversation",
}
"""How a `Phase` event's name reads in text output; other names read with spaces."""


def _issue_text(issue: str | None, github_event: str | None) -> str:
    from ..fix import read_github_event

    if github_event:
        return read_github_event(Path(github_event))
    if issue is None:
        raise EvoError("fix needs an issue: text, a file path, - for stdin, or --github-event PATH")
    if issue == "-":
        text = sys.stdin.read()
    elif _names_a_file(issue):
        path = Path(issue)
        if not path.exists():
            raise EvoError(f"issue file not found: {issue}")
        if not path.is_file():
            raise EvoError(f"issue file {issue} is not a file")
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise EvoError(f"cannot read issue file {issue}: {exc.strerror}") from exc
    else:
        text = issue
    if not text.strip():
        raise EvoError("the issue text is empty")
    return text.strip()


def _names_a_file(issue: str) -> bool:
    """Whether ISSUE is meant as a path: an existing file, or one word (no whitespace, not a
    URL) that ends like an issue file or has a slash. Free text stays text; a mistyped path
    is an error rather than an issue reading "/nonexistent/issue.md"."""
    if len(issue) >= 4096 or "\n" in issue:
        return False
    try:
        if Path(issue).is_file():
            return True
    except (OSError, ValueError):  # a name too long for a path, a NUL: text
        return False
    if any(ch.isspace() for ch in issue) or "://" in issue:
        return False
    return issue.lower().endswith(ISSUE_FILE_SUFFIXES) or "/" in issue


def phase_line(name: str, detail: str = "") -> str:
    """A `Phase` event as one text line: "· baseline tests: 12 passed, 1 failed"."""
    label = PHASE_LABELS.get(name) or one_line(name.replace("_", " "), 60)
    return f"· {label}: {one_line(detail, 200)}" if detail.strip() else f"· {label}"


def _printer(output_format: str):
    def show(event: Event) -> None:
        if output_format == "stream-json":
            emit_json_line(event.to_json())
            return
        data = event.to_json()
        kind = data["type"]
        if kind == "phase":
            echo(phase_line(data["name"], data.get("detail") or ""), err=True)
        elif kind == "tool_call":
            echo(f"→ {data['name']} {json.dumps(data['arguments'])[:160]}", err=True)
        elif kind == "tool_result" and not data["ok"]:
            echo(f"  ✗ {data['output'].splitlines()[0][:160] if data['output'] else ''}", err=True)
        elif kind == "test_command":  # which command runs the tests, and why
            from evoagent.sandbox.testdetect import TestCommand, describe_test_command

            chosen = TestCommand.of(data["argv"], data["source"])
            echo(f"tests: {describe_test_command(chosen)}", err=True)
        elif kind == "test_result" and data.get("not_run"):
            echo(f"tests (attempt {data['attempt']}): could not run — {data['not_run']}", err=True)
        elif kind == "test_result":
            echo(f"tests (attempt {data['attempt']}): {data['passed']} passed, "
                 f"{data['failed']} failed, {data['errors']} errors", err=True)
        elif kind == "message":
            echo(f"  {data['text'][:200]}", err=True)
        elif kind == "patch_filtered":
            for line in data["dropped"]:
                echo(f"  dropped from the patch: {line}", err=True)
            for line in data["left_out"]:
                echo(f"  left out of the verdict (test infrastructure): {line}", err=True)

    return show


def _run(ctx: RepoContext, issue: str, model: str | None, apply: bool, commit: bool,
         strict: bool, output_format: str):
    from ..fix import FixOptions, run_fix

    # Ctrl-C propagates: run_fix has written the report and removed the sandbox, and
    # main() prints one line and exits 130.
    outcome = run_fix(ctx, FixOptions(issue, model, apply, commit, strict), _printer(output_format))
    if output_format == "json":
        emit_json(outcome.report)
    elif output_format == "text":
        echo(f"{outcome.status}: run {outcome.run_id}")
        not_run = (outcome.report.get("tests") or {}).get("not_run")
        if not_run:
            echo(f"tests could not run: {not_run}")
        echo(f"patch:  {outcome.run_dir / 'patch.diff'}")
        echo(f"report: {outcome.run_dir / 'report.json'}")
    return outcome


@click.command()
@click.argument("issue", required=False)
@click.option("--github-event", metavar="PATH", help="Read the issue from a GitHub Actions event JSON.")
@click.option("--model", "-m", metavar="MODEL", help="Any litellm model name.")
@click.option("--apply", is_flag=True, help="Apply a passing patch to the working tree.")
@click.option("--commit", is_flag=True, help="Commit a passing patch on branch evoagent/fix-<slug>.")
@click.option("--strict", is_flag=True, help="Refuse to run without bubblewrap isolation.")
@click.option("--output-format", type=FORMATS, default="text", show_default=True)
def fix(issue, github_event, model, apply, commit, strict, output_format) -> None:
    """Fix ISSUE headless: sandboxed attempts proven by the repo's tests.

    ISSUE is text, a path to a file, or - for stdin. Exit codes: 0 fixed and tests pass,
    1 not fixed, 2 bad input, 3 no model or model error, 4 budget exhausted,
    5 tests could not run (no verdict).
    """
    from ..model_check import check_model
    from ..warmup import start_warmup

    text = _issue_text(issue, github_event)
    ctx = RepoContext.open(model=model)
    if not ctx.has_commits():  # bad input first, as run_request would say it
        raise EvoError("this repository has no commits yet: nothing to fix against")
    # Before anything heavy: a bad model name or a missing key is one line and exit 3 now,
    # not after the workspace, the baseline tests and litellm's import.
    checked = check_model(ctx.settings.model)
    start_warmup()  # litellm and LanceDB load while the workspace and baseline tests run
    # The checked name goes on, so an unconfigured model is not looked for a second time.
    sys.exit(_run(ctx, text, checked.name, apply, commit, strict, output_format).exit_code)


@click.command()
@click.option("--output-format", type=FORMATS, default="text", show_default=True)
@click.option("--keep", is_flag=True, help="Keep the demo repository and print where it is.")
def demo(output_format: str, keep: bool) -> None:
    """Run the whole loop on a tiny repo with a real bug, with a SCRIPTED model (no key).

    Shows locate, edit, the kernel's test run, the failure digest, refinement and the
    report. The model's replies are scripted; everything else is the real machinery.
    """
    from evoagent.memory.mine import mine

    from ..demo import ISSUE, build_demo_repo, register_demo_script, require_pytest
    from ..warmup import start_warmup

    start_warmup()  # litellm loads while the demo repository is built and mined
    where = Path(tempfile.mkdtemp(prefix="evoagent-demo-"))
    try:
        repo = build_demo_repo(where)
        echo(f"[scripted model] demo repository: {repo}", err=True)
        ctx = RepoContext.open(repo)
        require_pytest(ctx.venv)
        mine(ctx.root, ctx.store)
        model = register_demo_script()
        outcome = _run(ctx, ISSUE, model, False, False, False, output_format)
        if output_format == "text":
            echo("\n" + (outcome.run_dir / "patch.diff").read_text())
    finally:
        if not keep:
            import shutil

            shutil.rmtree(where, ignore_errors=True)
    sys.exit(outcome.exit_code)


COMMANDS = [fix, demo]
