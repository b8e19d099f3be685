"""The evolution screen on a real genome repository and archive: the lineage tree, a
variant's proposal, gates and outcomes, its genome diff in the review, promotion after the
test-split comparison, rejection and rollback. Scoring on the test split is pre-filled in
the archive record (`compare_on_test` scores only what is missing), so no benchmark runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import SIZE
from evoagent.agent.evolve.archive import Archive, GateResult, StageScore, Variant
from evoagent.agent.evolve.genome_repo import GenomeRepo
from evoagent.agent.genome import init_genome
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.confirm import ConfirmScreen
from evoagent.tui.screens.evolution import EvolutionScreen
from evoagent.tui.screens.review import ReviewScreen
from helpers import wait_for
from rich.console import Console
from test_snapshots import steady

ADMITTED = "g1-3fa2"
REJECTED = "g1-9c01"
CHILD = "g2-7b10"
SKILL_PATH = "skills/check-both-bounds.md"
SKILL = "# Check both bounds\n\nWhen a function clamps, test the value above the upper bound.\n"
PROPOSAL = ("Diagnosis: the agent fixed one branch of clamp-like code and missed the other.\n"
            "Change: a skill that asks for a test on each bound.\n"
            "Expected: more val tasks resolved on boundary bugs.")
VAL_TASKS = [f"task-{n}" for n in range(1, 7)]


def score(run: str, outcomes: dict[str, bool]) -> StageScore:
    return StageScore(run, sum(outcomes.values()), len(outcomes), [0.2, 0.9], outcomes)


class Genome:
    """The project's live genome with one variant branch, and the archive."""

    def __init__(self, root: Path):
        self.path = root / ".evoagent" / "agent"
        init_genome(self.path)
        self.repo = GenomeRepo(self.path)
        self.archive = Archive(root / ".evoagent" / "evolve")
        self.main = self.repo.sha("main")
        worktree = self.repo.fork(ADMITTED, "main", self.archive.worktrees)
        (worktree / SKILL_PATH).write_text(SKILL)
        self.commit = self.repo.commit_all(worktree, "Add a skill: check both bounds")
        self.repo.drop_worktree(worktree)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True,
                              check=True).stdout.strip()

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.path)): p.read_bytes()
                for p in sorted(self.path.rglob("*")) if p.is_file() and ".git" not in p.parts}


@pytest.fixture
def genome(project) -> Genome:
    genome = Genome(project.path)
    archive = genome.archive
    archive.save(Variant("main", None, 0, status="admitted", created_at=1_700_000_000,
                         scores={"val": score("b-main", {t: n < 2 for n, t in
                                                         enumerate(VAL_TASKS)})}))
    parent_val = {t: n < 2 for n, t in enumerate(VAL_TASKS)}
    val = {t: n in (0, 2, 3, 4) for n, t in enumerate(VAL_TASKS)}
    test = {"test-a": True, "test-b": True, "test-c": True, "test-d": False}
    main_test = {"test-a": True, "test-b": False, "test-c": True, "test-d": False}
    archive.save(Variant(
        ADMITTED, "main", 1, status="admitted", proposal=PROPOSAL, commit=genome.commit,
        gates=[GateResult("lint", True, "templates render"),
               GateResult("small", True, "2/3 tasks"),
               GateResult("val", True, "4/6 vs parent 2/6")],
        scores={"small": score("b-small", {"task-1": True, "task-3": True, "task-5": False}),
                "val": score("b-val", val),
                "test": score("b-test", test),
                f"test:main@{genome.main[:12]}": score("b-test-main", main_test)},
        parent_scores={"val": score("b-val-main", parent_val)},
        cost_usd=0.42, tokens=12_345, seconds=192, created_at=1_700_000_100))
    archive.save(Variant(
        REJECTED, "main", 1, status="rejected", reason="gate small: 0/3 tasks resolved",
        proposal="Change: drop the reproduction step.",
        gates=[GateResult("lint", True, "templates render"),
               GateResult("small", False, "0/3 tasks resolved")],
        cost_usd=0.18, tokens=5_100, seconds=75, created_at=1_700_000_200))
    archive.save(Variant(CHILD, ADMITTED, 2, status="gating", proposal="Change: shorter prompt.",
                         created_at=1_700_000_300))
    return genome


def plain(renderable) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


async def open_evolution(pilot, via: str = "slash") -> EvolutionScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.status.model, what="session")
    if via == "slash":
        app.main.prompt.value = "/evolve"
        await pilot.press("enter")
    elif via == "palette":
        await pilot.press("ctrl+p")
        await pilot.press(*"Evolution")
        await pilot.pause(0.3)
        await pilot.press("enter")
    else:
        await pilot.press(via)
    await wait_for(pilot, lambda: isinstance(app.screen, EvolutionScreen), what="evolution")
    screen = app.screen
    await wait_for(pilot, lambda: len(screen.variants) == 4, what="variants")
    return screen


async def select(pilot, screen: EvolutionScreen, variant_id: str) -> None:
    node = screen.nodes[variant_id]
    await wait_for(pilot, lambda: node.line >= 0, what="layout")
    screen.tree.move_cursor(node)
    await wait_for(pilot, lambda: screen.selected == variant_id, what=f"select {variant_id}")


def labels(screen: EvolutionScreen) -> dict[str, str]:
    return {key: str(node.label) for key, node in screen.nodes.items()}


async def test_tree_details_diff_and_promotion(project, script, genome):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot, via="palette")
        assert labels(screen) == {"main": "main 2/6", ADMITTED: f"{ADMITTED} admitted 4/6",
                                  REJECTED: f"{REJECTED} rejected (small)",
                                  CHILD: f"{CHILD} gating"}
        assert screen.nodes[CHILD].parent is screen.nodes[ADMITTED]
        assert screen.nodes[REJECTED].label.style == "dim"

        await pilot.press("down")  # from main to the first child
        await wait_for(pilot, lambda: screen.selected == ADMITTED, what="select")
        detail = plain(screen.detail.content)
        assert "Change: a skill that asks for a test on each bound." in detail
        assert "✓ val  4/6 vs parent 2/6" in detail
        assert "cost $0.42 · 12,345 tokens · 3m 12s" in detail
        table = screen.outcomes
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert ["task-2", "val", "✗", "✓"] in rows
        assert ["task-3", "val", "✓", "✗"] in rows
        assert ["test-b", "test", "✓", "✗"] in rows

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="diff")
        diff = app.screen.request.diff
        assert f"+++ b/{SKILL_PATH}" in diff
        assert "+When a function clamps, test the value above the upper bound." in diff
        assert app.screen.request.title == f"Genome diff main → {ADMITTED}"
        # Read-only: nothing to accept, reject, keep or commit in the footer.
        shown = {b.binding.description for b in app.screen.active_bindings.values()
                 if b.binding.show}
        assert not shown & {"Accept", "Reject", "Keep", "Commit", "Hunk", "File"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back")

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        assert (f"held-out test split: {ADMITTED} 3/4, main 2/4; both 2, only {ADMITTED} 1, "
                "only main 0, neither 1") in " ".join(app.screen.question.split())
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.variants[ADMITTED].status == "promoted",
                       what="promoted", timeout=20)
        assert not screen.busy

    assert genome.git("rev-parse", "main") == genome.commit
    assert (genome.path / SKILL_PATH).read_text() == SKILL
    assert genome.git("rev-parse", "promoted/1-previous") == genome.main
    assert genome.archive.get(ADMITTED).status == "promoted"


async def test_variants_written_by_a_running_evolve_show_up(project, script, genome):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        await select(pilot, screen, REJECTED)
        # What `evoagent evolve run` in another process does as a variant goes on.
        late = Variant("g2-e5d1", CHILD, 2, status="proposing", created_at=1_700_000_400)
        genome.archive.save(late)
        await wait_for(pilot, lambda: "g2-e5d1" in screen.nodes, what="new variant")
        assert screen.nodes["g2-e5d1"].parent is screen.nodes[CHILD]
        late.status = "gating"
        genome.archive.save(late)
        await wait_for(pilot, lambda: labels(screen)["g2-e5d1"] == "g2-e5d1 gating",
                       what="new status")
        assert screen.selected == REJECTED
        assert screen.tree.cursor_node is screen.nodes[REJECTED]


async def test_declined_promotion_leaves_main(project, script, genome):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        await select(pilot, screen, ADMITTED)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")
        await wait_for(pilot, lambda: not screen.busy, what="declined")
    assert genome.git("rev-parse", "main") == genome.main
    assert genome.archive.get(ADMITTED).status == "admitted"


async def test_reject_after_confirmation(project, script, genome):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot, via="f4")
        await select(pilot, screen, ADMITTED)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.variants[ADMITTED].status == "rejected",
                       what="rejected")
        assert labels(screen)[ADMITTED] == f"{ADMITTED} rejected"
    assert genome.archive.get(ADMITTED).reason == "rejected by a person"


async def test_rollback_restores_main_byte_for_byte(project, script, genome):
    before = genome.files()
    genome.repo.move_main(genome.repo.ref_of(ADMITTED))  # as a promotion does
    assert genome.files() != before
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evolution(pilot)
        await wait_for(pilot, lambda: screen.genome and screen.genome.tags, what="tags")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        assert "promoted/1-previous" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.genome.main == genome.main, what="rolled back")
    assert genome.git("rev-parse", "main") == genome.main
    assert genome.git("status", "--porcelain") == ""
    assert genome.files() == before


def test_evolution_screen_80x24(project, genome, snap_compare):
    from evoagent.agent.scripted_provider import register_script, unregister_script

    register_script("evolution-snapshot", [])
    app = EvoApp(root=project.path, model="scripted/evolution-snapshot", mine_on_start=False)

    async def run_before(pilot) -> None:
        screen = await open_evolution(pilot)
        await select(pilot, screen, ADMITTED)
        await steady(pilot)

    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        unregister_script("evolution-snapshot")
