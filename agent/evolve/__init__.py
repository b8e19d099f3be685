"""Hyperagent mode: the meta agent edits the genome on a branch; the kernel gates and scores.

- `generations.py` — `evoagent evolve run`: propose → gate → score → archive, per generation.
- `meta_agent.py` — the meta agent: one change to the genome per proposal.
- `gates.py`, `code_scan.py`, `safety.py` — what a variant passes before its score counts.
- `selection.py` — which variants become parents.
- `archive.py` — every variant and its lineage, under `.evoagent/evolve/`.
- `genome_repo.py` — the genome's git repository: branches, notes, promotion, rollback.
- `review.py` — what a person does: compare, promote, reject, roll back.

Depends on `bench` and `tasks`; nothing below depends on it.
"""
