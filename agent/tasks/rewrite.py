"""A task's problem statement rewritten by a model as the bug report a user would file.

A commit message says what was done ("Fix sub argument order"); an issue says what went
wrong ("sub(5, 3) returns -2"). As in R2E-Gym, a model is shown the statement, the hidden
test part of the patch and the FAIL_TO_PASS tests with the line each failed with, and asked
for the report: observable behaviour, expected against actual, no fix. It never sees the
code part. The result is kept in `Task.rewritten_statement` with the model's name beside
the original statement, which stays as it was.

A rewrite that leaks the fix is refused mechanically and the original kept, with the reason
in `Task.rewrite_rejected`: one that names a file of the code part (the model was not shown
it, so the name can only come from the message describing the fix), or that repeats a line
the code part adds.

The prompt is a kernel template here, not a genome prompt: the tasks are the harness that
scores the genome, and a variant able to edit the prompt that writes the problem statements
it is scored on could make its own exam easier (DESIGN.md: task sets are kernel, never
editable by the meta agent). It is rendered the genome's way (Jinja2, StrictUndefined).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from .patch_split import file_sections
from .store import Task, TaskStore

if TYPE_CHECKING:
    from ..model import Model

TEST_PATCH_CHARS = 12_000
"""The test part is shown up to this many characters (cut at a line)."""
MIN_LEAK_TOKENS = 3
MIN_LEAK_CHARS = 16
"""An added line counts as a leak only when it is distinctive: this many words and numbers,
or this long. `return None` or `pass` in a report says nothing about the fix."""

PROMPT = """\
{#- Asks for an issue-style problem statement for a mined task.
  Variables:
    statement     str: the original statement (a commit message, or the issue a person asked about)
    test_patch    str: the hidden test part of the gold patch (maybe cut)
    failures      list of {test, line}: the FAIL_TO_PASS tests and the line each fails with before the fix
-#}
You are writing the bug report a user of this project would have filed before the problem
below was fixed. The report is given to an engineer who must find and fix the problem
without seeing the fix, so it must describe the symptom, never the solution.

<original_statement>
{{ statement }}
</original_statement>

<tests_that_check_the_fix>
{{ test_patch }}
</tests_that_check_the_fix>

<failing_tests>
{%- for failure in failures %}
{{ failure.test }}{% if failure.line %}: {{ failure.line }}{% endif %}
{%- endfor %}
</failing_tests>

Write the report as the user would:
- what they did (a short reproduction through the public API, in the words of a user),
- what they expected and what actually happened (values, errors, messages),
- nothing about how to fix it: no cause, no patch, no change to make,
- no source file names or code lines that only the fix would reveal, and no test names.
Reply with the report only: a one-line title, a blank line, then the body in Markdown.
"""


class RewriteError(ValueError):
    """A rewrite that was refused; the message says why."""


@dataclass
class RewriteResult:
    task: Task
    """The task as stored after this rewrite (rewritten, or with the refusal recorded)."""
    kept: bool
    reason: str = ""


@cache
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(PROMPT)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut + 1 if cut > 0 else limit] + "... (cut)\n"


def render_prompt(task: Task) -> str:
    failures = [{"test": t, "line": task.fail_lines.get(t, "")} for t in task.fail_to_pass]
    return (
        _template()
        .render(
            statement=task.problem_statement.strip(),
            test_patch=_cut(task.test_patch, TEST_PATCH_CHARS).rstrip("\n"),
            failures=failures,
        )
        .strip()
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def _bounded(word: str) -> re.Pattern[str]:
    """`word` not inside a longer name or path (a path separator before it is fine)."""
    return re.compile(rf"(?<![\w.-]){re.escape(word)}(?![\w-])")


def added_lines(patch: str) -> list[str]:
    """The distinctive lines the patch adds (whitespace squashed), except lines it only moves."""
    added, removed = set(), set()
    for line in patch.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added.add(_squash(line[1:]))
        elif line.startswith("-") and not line.startswith("---"):
            removed.add(_squash(line[1:]))
    return sorted(
        line
        for line in added - removed
        if len(re.findall(r"\w+", line)) >= MIN_LEAK_TOKENS or len(line) >= MIN_LEAK_CHARS
    )


def leak(task: Task, text: str) -> str:
    """Why `text` gives the fix away ("" when it does not): a code-part file named (by path
    or by file name), or a line the code part adds."""
    for section in file_sections(task.patch):
        path = section.path
        name = path.rsplit("/", 1)[-1]
        if _bounded(path).search(text) or _bounded(name).search(text):
            return f"names {path}, a file only the fix changes"
    squashed = _squash(text)
    for line in added_lines(task.patch):
        if line in squashed:
            return f"repeats a line the fix adds: {line[:120]}"
    return ""


def clean_reply(text: str) -> str:
    """The report without a fence around all of it (some models wrap a whole reply)."""
    text = text.strip()
    fenced = re.fullmatch(r"```[\w-]*\n(.*)\n```", text, re.DOTALL)
    return fenced.group(1).strip() if fenced else text


def rewrite_task(task: Task, model: Model) -> RewriteResult:
    """Ask `model` for the report and judge it; the task returned is not stored yet."""
    reply = model.query([{"role": "user", "content": render_prompt(task)}])
    text = clean_reply(reply.text or "")
    reason = "the model's reply was empty" if not text else leak(task, text)
    if reason:
        return RewriteResult(
            replace(task, rewrite_rejected=f"{model.name}: {reason}"), False, reason
        )
    kept = replace(task, rewritten_statement=text, rewrite_model=model.name, rewrite_rejected="")
    return RewriteResult(kept, True)


def rewrite_tasks(
    store: TaskStore,
    tasks: Iterable[Task],
    model: Model,
    progress: Callable[[RewriteResult], None] | None = None,
) -> list[RewriteResult]:
    """Rewrite each task and store the outcome at once, so an interrupted run keeps what it
    did. A model error stops the run (it raises) after the tasks already done."""
    results = []
    for task in tasks:
        result = rewrite_task(task, model)
        store.update(result.task)
        results.append(result)
        if progress:
            progress(result)
    return results
