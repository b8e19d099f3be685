"""The hyperagent's kernel: the harness that scores agents on the repository's own history.

- `tasks.py` — `Task`, `Reject`, `TaskStore` (JSONL under `.evoagent/tasks/`), the split.
- `patch_split.py` — a gold patch → code part / test part; tests the diff changed.
- `task_candidates.py` — first-parent history → candidates, or why a commit is not one.
- `task_mining.py` — validate a candidate in sandbox workspaces; FAIL_TO_PASS/PASS_TO_PASS,
  flaky, cascade, rejection reasons.
- `task_miner.py` — `mine_tasks`: the walk, the worker pool, the store, problem statements.
"""
