"""The hyperagent's archive: the lineage tree of genome variants beside the selected one's
proposal, gates, per-task outcomes and cost. d shows its genome diff, p promotes it (after
scoring on the held-out test split and a confirmation), x rejects it, b rolls main back.

The archive is polled every couple of seconds in a thread worker, so an `evoagent evolve
run` in another process shows its progress here as it goes.
"""

from __future__ import annotations

import textwrap
import threading
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from ..controller import GenomeStatus, one_line
from .keys import quiet_app_bindings

POLL_S = 2.0
"""How often the archive is read again."""
STATUS_STYLES = {"admitted": "green", "promoted": "bold green", "rejected": "dim",
                 "proposing": "yellow", "gating": "yellow"}
STAGES = ("small", "val", "test")
MAIN = "main"
CONFIRM_WIDTH = 54
"""Columns inside the confirm dialog: its label does not wrap, so questions are filled."""


def score_label(stage: Any) -> str:
    return f"{stage.resolved}/{stage.total}" if stage is not None else ""


def rejected_by(variant: Any) -> str:
    """The gate that rejected a variant (its first failing gate), or ""."""
    failed = next((g for g in variant.gates if not g.passed), None)
    return failed.name if failed else ""


def node_label(variant: Any) -> Text:
    """"g1-3fa2 admitted 4/6": id, status and val score; rejected ones dim, with the gate."""
    if variant.status == "rejected":
        gate = rejected_by(variant)
        return Text(f"{variant.id} rejected" + (f" ({gate})" if gate else ""), style="dim")
    label = Text.assemble(variant.id, " ", (variant.status, STATUS_STYLES.get(variant.status, "")))
    score = score_label(variant.scores.get("val"))
    if score:
        label.append(f" {score}")
    return label


def fill(text: str) -> str:
    return "\n".join(textwrap.fill(line, CONFIRM_WIDTH, break_on_hyphens=False) if line else ""
                     for line in text.splitlines())


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def mark(outcome: bool | None) -> Text:
    if outcome is None:
        return Text("-", style="dim")
    return Text("✓", style="green") if outcome else Text("✗", style="red")


def variant_detail(variant: Any) -> Group:
    head = Text.assemble((variant.id, "bold"), "  ",
                         (variant.status, STATUS_STYLES.get(variant.status, "")),
                         f"  gen {variant.generation}  parent {variant.parent or '-'}")
    parts: list[Any] = [head]
    scores = "  ".join(f"{name} {score_label(s)}" for name, s in variant.scores.items()
                       if not name.startswith("test:"))
    if scores:
        parts.append(Text(f"scores  {scores}"))
    parts.append(Text(f"cost ${variant.cost_usd:.2f} · {variant.tokens:,} tokens · "
                      f"{duration(variant.seconds)}", style="dim"))
    if variant.reason:
        parts.append(Text(f"reason  {variant.reason}", style="italic"))
    parts.append(Text("\nproposal", style="bold"))
    parts.append(Text(variant.proposal.strip() or "(none yet)"))
    if variant.gates:
        parts.append(Text("\ngates", style="bold"))
        for gate in variant.gates:
            parts.append(Text.assemble(
                ("✓ " if gate.passed else "✗ ", "green" if gate.passed else "red"),
                (gate.name, "bold"), f"  {gate.detail}" if gate.detail else ""))
    return Group(*parts)


def main_detail(genome: GenomeStatus | None, archived: Any, count: int) -> Group:
    parts: list[Any] = [Text("main", style="bold"), Text("the live agent", style="dim")]
    if genome is not None:
        parts.append(Text(f"genome {genome.main[:12]}"))
        if genome.tags:
            parts.append(Text(f"b rolls back to {genome.tags[-1]}", style="dim"))
    if archived is not None and archived.scores:
        parts.append(Text("scores  " + "  ".join(
            f"{name} {score_label(s)}" for name, s in archived.scores.items())))
    parts.append(Text(f"\n{count} variant(s) in the archive" if count else
                      "\nNo variants yet: `evoagent evolve run` makes them.", style="dim"))
    return Group(*parts)


def outcome_rows(variant: Any) -> list[tuple[str, str, bool | None, bool | None]]:
    """(task, task set, variant resolved, parent resolved) per task the variant ran; on the
    test split the parent column is main's score at the newest version it was scored at."""
    rows = []
    for stage in STAGES:
        mine = variant.scores.get(stage)
        if mine is None:
            continue
        theirs = variant.parent_scores.get(stage)
        if stage == "test" and theirs is None:
            mains = [s for name, s in variant.scores.items() if name.startswith("test:main@")]
            theirs = mains[-1] if mains else None
        other = theirs.outcomes if theirs is not None else {}
        for task in sorted(mine.outcomes):
            rows.append((task, stage, mine.outcomes[task], other.get(task)))
    return rows


class EvolutionScreen(Screen):
    CSS_PATH = "evolution.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "diff", "Diff", tooltip="The genome diff from the parent to the variant"),
        Binding("p", "promote", "Promote",
                tooltip="Score on the test split, confirm, then make the variant main"),
        Binding("x", "reject", "Reject", tooltip="Reject the selected variant"),
        Binding("b", "rollback", "Roll back", tooltip="Move main back before the last promotion"),
        Binding("g", "reload", "Reload", show=False),
        *quiet_app_bindings("f2", "f3", "f4"),
    ]

    tree = getters.query_one("#evo-tree", Tree)
    detail = getters.query_one("#evo-detail", Static)
    outcomes = getters.query_one("#evo-outcomes", DataTable)
    progress_line = getters.query_one("#evo-progress", Static)

    def __init__(self) -> None:
        super().__init__()
        self.variants: dict[str, Any] = {}
        self.nodes: dict[str, TreeNode] = {}
        self.genome: GenomeStatus | None = None
        self.selected: str = MAIN
        self.busy = False
        """A promotion, rejection or rollback is running."""
        self._signature: object = None
        self._poll: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Evolution", style="bold"), id="evo-title")
        with Horizontal(id="evo-body"):
            yield Tree(Text(MAIN, style="bold"), data=MAIN, id="evo-tree")
            with VerticalScroll(id="evo-detail-scroll"):
                yield Static(id="evo-detail")
                yield DataTable(id="evo-outcomes", cursor_type="none", zebra_stripes=True)
        yield Static(id="evo-progress")
        yield Footer()

    def on_mount(self) -> None:
        self.tree.guide_depth = 3
        self.nodes = {MAIN: self.tree.root}
        self.outcomes.add_columns("task", "set", "variant", "parent")
        self.outcomes.display = False
        self.progress_line.display = False
        self.tree.focus()
        self.load()
        self._poll = self.set_interval(POLL_S, self.load)

    def on_screen_suspend(self) -> None:
        # The screen stays installed after it is closed: no polling while it is not shown.
        if self._poll is not None:
            self._poll.pause()

    def on_screen_resume(self) -> None:
        if self._poll is not None:
            self.load()
            self._poll.resume()

    # -- loading ----------------------------------------------------------------------

    def action_reload(self) -> None:
        self._signature = None
        self.load()

    @work(thread=True, exclusive=True, group="evolution-load", exit_on_error=False)
    def load(self) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            variants = controller.list_variants()
            genome = controller.genome_status()
        except Exception as exc:
            self.app.call_from_thread(self._failed, one_line(exc))
            return
        self.app.call_from_thread(self._show, variants, genome)

    def _failed(self, error: str) -> None:
        self.detail.update(Text(error, style="red"))

    def _show(self, variants: list[Any], genome: GenomeStatus) -> None:
        signature = (genome, [(v.id, v.status, v.updated_at) for v in variants])
        if signature == self._signature:
            return
        self._signature = signature
        self.variants = {v.id: v for v in variants}
        self.genome = genome
        self._build_tree(variants)
        self._render_selected()

    def _build_tree(self, variants: list[Any]) -> None:
        """Relabel the nodes already shown and add the new ones under their parents (so the
        cursor stays put while a run adds variants); rebuild only when one went away."""
        tree = self.tree
        known = {v.id for v in variants} | {MAIN}

        def parent_id(variant: Any) -> str:  # a parent not archived: under main
            return variant.parent if variant.parent in known else MAIN

        moved = any(node.parent is None or node.parent.data != parent_id(self.variants[key])
                    for key, node in self.nodes.items() if key in self.variants and key != MAIN)
        rebuild = moved or any(node_id not in known for node_id in self.nodes)
        if rebuild:
            tree.clear()
            self.nodes = {MAIN: tree.root}
        main = self.variants.get(MAIN)
        root_label = Text(MAIN, style="bold")
        if main is not None and main.scores.get("val") is not None:
            root_label.append(f" {score_label(main.scores['val'])}")
        tree.root.set_label(root_label)
        pending = [v for v in variants if v.id != MAIN]
        # Parents come before children (generation order); a child whose parent is not
        # placed yet waits a round, and one whose parent is not archived hangs under main.
        while pending:
            ready = [v for v in pending if parent_id(v) in self.nodes] or pending[:1]
            for variant in ready:
                node = self.nodes.get(variant.id)
                if node is None:
                    parent = self.nodes.get(parent_id(variant), tree.root)
                    parent.allow_expand = True
                    parent.expand()
                    self.nodes[variant.id] = parent.add(node_label(variant), data=variant.id,
                                                        expand=True, allow_expand=False)
                else:
                    node.set_label(node_label(variant))
                pending.remove(variant)
        tree.root.expand()
        if rebuild or tree.cursor_node is None or tree.cursor_node.data != self.selected:
            tree.last_line  # noqa: B018 -- lays the lines out, so new nodes know their line
            tree.move_cursor(self.nodes.get(self.selected, tree.root))

    # -- the selected variant ---------------------------------------------------------

    @on(Tree.NodeHighlighted, "#evo-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        self.selected = event.node.data or MAIN
        self._render_selected()

    def _render_selected(self) -> None:
        variant = self.variants.get(self.selected)
        if self.selected == MAIN or variant is None:
            others = sum(1 for v in self.variants if v != MAIN)
            self.detail.update(main_detail(self.genome, self.variants.get(MAIN), others))
            self.outcomes.display = False
            return
        self.detail.update(variant_detail(variant))
        rows = outcome_rows(variant)
        self.outcomes.clear()
        for task, stage, mine, theirs in rows:
            self.outcomes.add_row(Text(task), stage, mark(mine), mark(theirs))
        self.outcomes.display = bool(rows)

    def _current(self) -> Any:
        variant = self.variants.get(self.selected)
        if self.selected == MAIN or variant is None:
            self.notify("Select a variant in the tree.", severity="warning")
            return None
        return variant

    def _start(self, what: str) -> bool:
        if self.busy:
            self.notify("Wait: another change to the genome is running.", severity="warning")
            return False
        self.busy = True
        self.show_progress(what)
        return True

    def _finish(self, text: str, error: bool = False) -> None:
        self.busy = False
        self.progress_line.display = False
        self.notify(text, severity="error" if error else "information")
        self.action_reload()

    def show_progress(self, text: str) -> None:
        self.progress_line.update(Text(text, style="italic"))
        self.progress_line.display = True

    # -- diff -------------------------------------------------------------------------

    def action_diff(self) -> None:
        variant = self._current()
        if variant is not None:
            self.load_diff(variant.id)

    @work(thread=True, group="evolution-diff", exit_on_error=False)
    def load_diff(self, variant_id: str) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            diff = controller.variant_diff(variant_id)
        except Exception as exc:
            self.app.call_from_thread(self.notify, one_line(exc), severity="error")
            return
        self.app.call_from_thread(self._open_diff, variant_id, diff)

    def _open_diff(self, variant_id: str, diff: str) -> None:
        from .review import ReviewRequest, ReviewScreen

        variant = self.variants.get(variant_id)
        if not diff.strip():
            self.notify(f"{variant_id} changed nothing in the genome.", severity="warning")
            return
        parent = (variant.parent if variant else None) or MAIN
        status = variant.status if variant else ""
        request = ReviewRequest(diff, title=f"Genome diff {parent} → {variant_id}",
                                metadata={"status": status}, key=variant_id, read_only=True)
        # Read-only: the review offers no decision, and nothing is applied.
        self.app.push_screen(ReviewScreen(request))

    # -- promote ----------------------------------------------------------------------

    def action_promote(self) -> None:
        variant = self._current()
        if variant is None:
            return
        if variant.status not in ("admitted", "promoted"):
            self.notify(f"{variant.id} is {variant.status}: only an admitted variant can be "
                        "promoted.", severity="warning")
            return
        if self._start(f"Scoring {variant.id} and main on the held-out test split…"):
            self.promote(variant.id)

    @work(thread=True, group="evolution-change", exit_on_error=False)
    def promote(self, variant_id: str) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        progress = lambda done, total: self.app.call_from_thread(  # noqa: E731
            self.show_progress, f"Scoring {variant_id} on the test split: {done}/{total} tasks…")
        try:
            result = controller.promote_variant(variant_id, self._confirm_from_thread, progress)
        except Exception as exc:
            self.app.call_from_thread(self._finish, f"Not promoted: {one_line(exc)}", True)
            return
        if result is None:
            self.app.call_from_thread(self._finish, f"Not promoted: {variant_id}.")
            return
        tag, _comparison = result
        self.app.call_from_thread(
            self._finish, f"Promoted {variant_id} to main; the previous main is {tag}.")

    def _confirm_from_thread(self, text: str) -> bool:
        """`promote`'s confirm: the comparison in the confirm modal; blocks this worker
        thread until the person answers (No if the screen or the app goes away)."""
        from .confirm import ConfirmScreen

        worker = get_current_worker()
        answered = threading.Event()
        answer: list[bool] = []

        def done(result: bool | None) -> None:
            answer.append(bool(result))
            answered.set()

        def ask() -> None:
            self.show_progress("Waiting for your answer…")
            self.app.push_screen(ConfirmScreen(fill(f"Promote to main?\n\n{text}")), done)

        self.app.call_from_thread(ask)
        while not answered.wait(0.2):
            if worker.is_cancelled or not self.app.is_running:
                return False
        return answer[0]

    # -- reject and roll back ---------------------------------------------------------

    @work
    async def action_reject(self) -> None:
        from .confirm import ConfirmScreen

        variant = self._current()
        if variant is None:
            return
        if variant.status == "rejected":
            self.notify(f"{variant.id} is already rejected.", severity="warning")
            return
        question = fill(f"Reject variant {variant.id}?\n{variant.proposal.strip()[:200]}")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        if self._start(f"Rejecting {variant.id}…"):
            self.change(lambda c: c.reject_variant(variant.id), f"Rejected {variant.id}.")

    @work
    async def action_rollback(self) -> None:
        from .confirm import ConfirmScreen

        tags = self.genome.tags if self.genome else []
        if not tags:
            self.notify("Nothing to roll back: main was never promoted.", severity="warning")
            return
        if not await self.app.push_screen_wait(
            ConfirmScreen(fill(f"Roll main back to {tags[-1]}?\nThe current main is tagged "
                               "too, so this can be undone."))
        ):
            return
        if self._start(f"Rolling main back to {tags[-1]}…"):
            self.change(lambda c: c.rollback_genome(tags[-1]), f"Main is {tags[-1]} again.")

    @work(thread=True, group="evolution-change", exit_on_error=False)
    def change(self, call: Any, done: str) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            call(controller)
        except Exception as exc:
            self.app.call_from_thread(self._finish, one_line(exc), True)
            return
        self.app.call_from_thread(self._finish, done)
