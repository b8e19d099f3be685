"""Tasks mined from the repository's own history: the problems a benchmark replays.

- `store.py` — `Task`, `Reject`, `TaskStore` (JSONL under `.evoagent/tasks/`), the split.
- `patch_split.py` — a gold patch → code part / test part; the tests the diff changed.
- `candidates.py` — first-parent history → candidates, or why a commit is not one.
- `validate.py` — validate a candidate in sandbox workspaces: FAIL_TO_PASS/PASS_TO_PASS,
  flaky tests, cascades, rejection reasons.
- `mine.py` — `mine_tasks`: the walk, the worker pool, the store, problem statements.
- `from_knowledge.py` — approved fixes (knowledge records) as candidates.
- `rewrite.py` — a task's statement rewritten by a model as a user's bug report.

Depends on the agent's core and the sandbox; never on `bench` or `evolve`.
"""
