"""Recall and locate results as the lines a person reads: `evoagent recall`/`locate` print
them, and the ACP server's /recall and /locate show them as a tool call's text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def commit_date(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")


def recall_lines(hits: list[Any], known: list[Any]) -> list[str]:
    """Past commits (sha, date, subject, up to four files), then approved fixes."""
    lines = []
    for h in hits:
        lines.append(f"{h.memory.sha[:10]}  {commit_date(h.memory.committed_at)}  {h.memory.subject}")
        files = h.memory.paths
        if files:
            more = f" (+{len(files) - 4} more)" if len(files) > 4 else ""
            lines.append(f"            {', '.join(files[:4])}{more}")
    if known:
        lines.append("knowledge:")
    for h in known:
        record = h.knowledge
        lines.append(f"{record.id}  {record.approved_date}  {record.intent}")
        lines.append(f"            approved by {record.approved_by}, run {record.run_id}: "
                     f"{', '.join(record.files[:4])}")
    return lines


def locate_lines(result: Any, k: int) -> list[str]:
    """Ranked files with up to three reasons each, then the top `k` symbols."""
    if not result.files:
        return ["no candidate files"]
    lines = []
    for rank, f in enumerate(result.files, 1):
        lines.append(f"{rank:>2}. {f.path}  ({f.score:.3f})")
        lines.extend(f"      {why}" for why in f.why[:3])
    if result.symbols:
        lines.append("symbols:")
        lines.extend(f"    {s.path}:{s.line}  {s.name}" for s in result.symbols[:k])
    return lines
