import pytest
from evoagent.memory.codeindex import CodeIndex
from evoagent.memory.repomap import estimate_tokens, pagerank, render_map


@pytest.fixture
def index(git_repo, tmp_path):
    files = {
        "core/models.py": (
            "class Record:\n    def save(self):\n        pass\n\n"
            "def load_record(key):\n    return Record()\n"
        ),
        "core/util.py": "def slugify(text):\n    return text\n",
        "plugins/exporter.py": (
            "class Exporter:\n    def export(self):\n        return 1\n\n"
            "def export_all():\n    return [Exporter()]\n"
        ),
        "docs/guide.md": "# Guide\nUse load_record to fetch a Record.\n",
    }
    for i in range(8):
        files[f"app/view{i}.py"] = (
            "from core.models import Record, load_record\n\n"
            f"def view{i}(key):\n    record = load_record(key)\n    record.save()\n    return Record\n"
        )
    git_repo.commit("project", files)
    return CodeIndex(git_repo.path, tmp_path / "cache").index()


def test_pagerank_ranks_the_heavily_referenced_file_first(index):
    ranks = pagerank(index)
    assert set(ranks) == set(index.files)
    assert sum(ranks.values()) == pytest.approx(1.0)
    order = sorted(ranks, key=ranks.get, reverse=True)
    assert order[0] == "core/models.py"
    assert ranks["core/models.py"] > 3 * ranks["plugins/exporter.py"]


def test_personalization_moves_a_focused_file_up(index):
    plain = pagerank(index)
    focused = pagerank(index, personalization={"plugins/exporter.py": 1.0})
    assert focused["plugins/exporter.py"] > plain["plugins/exporter.py"]
    assert max(focused, key=focused.get) == "plugins/exporter.py"


def test_focus_names_lift_the_files_that_define_them(index):
    plain = pagerank(index)
    boosted = pagerank(index, focus_names=["slugify"])
    # Nobody references slugify, so the boost alone changes nothing; focus on a used name does.
    assert boosted == plain
    text = render_map(index, budget_tokens=40, focus_names=["export_all"])
    assert text.splitlines()[0] == "plugins/exporter.py:"


def test_render_map_lists_top_files_with_signatures(index):
    text = render_map(index, budget_tokens=1024)
    blocks = text.split("\n\n")
    assert blocks[0] == (
        "core/models.py:\n  class Record:\n    def save(self):\n  def load_record(key):"
    )
    assert "docs/guide.md" not in text  # no definitions to show
    assert "plugins/exporter.py:" in text


@pytest.mark.parametrize("budget", [10, 25, 60, 200])
def test_render_map_respects_the_budget(index, budget):
    text = render_map(index, budget_tokens=budget)
    assert estimate_tokens(text) <= budget
    assert text.startswith("core/models.py:") or text == ""


def test_render_map_shows_more_with_more_budget(index):
    small = render_map(index, budget_tokens=25)
    large = render_map(index, budget_tokens=2000)
    assert len(small) < len(large)
    assert large.count(".py:") == len([p for p in index.files if p.endswith(".py")])


def test_render_map_focus_path_comes_first(index):
    text = render_map(index, budget_tokens=200, focus_paths=["core/util.py"])
    assert text.startswith("core/util.py:\n  def slugify(text):")


def test_empty_index(git_repo, tmp_path):
    git_repo.commit("empty")
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert pagerank(index) == {}
    assert render_map(index) == ""
