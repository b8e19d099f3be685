"""locate(): files and symbols for an issue, from code at a revision and the history it reaches."""

from __future__ import annotations

import pytest
from evoagent.memory.locate import PathResolver, is_test_path, locate
from evoagent.memory.mine import mine
from evoagent.memory.revisions import AsOf
from evoagent.memory.store import MemoryStore

BILLING = """\
class InvoiceCalculator:
    def total(self, lines):
        return round(sum(lines), 1)


def format_amount(value):
    return f"{value:.2f}"
"""
SHIPPING = """\
def shipping_cost(weight):
    return weight * 2
"""
UTIL = """\
def clamp(value, low, high):
    return max(low, min(value, high))
"""
A_HELPERS = "def normalize(text):\n    return text.strip()\n"
B_HELPERS = "def normalize(text):\n    return text.lower()\n"
TEST_BILLING = """\
from shop.billing import InvoiceCalculator


def test_total():
    assert InvoiceCalculator().total([1]) == 1
"""


@pytest.fixture
def repo(git_repo):
    git_repo.commit(
        "Initial shop",
        {
            "shop/__init__.py": "",
            "shop/billing.py": BILLING,
            "shop/shipping.py": SHIPPING,
            "shop/util.py": UTIL,
            "shop/a/helpers.py": A_HELPERS,
            "shop/b/helpers.py": B_HELPERS,
            "tests/test_billing.py": TEST_BILLING,
            "README.md": "A small shop.\n",
        },
    )
    return git_repo


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def paths(result) -> list[str]:
    return [f.path for f in result.files]


def test_traceback_ranks_the_failing_file_first(repo, cache):
    issue = (
        "Crash when normalizing\n\nTraceback (most recent call last):\n"
        '  File "/usr/lib/python3.12/json/decoder.py", line 337, in decode\n'
        '  File "/venv/lib/python3.12/site-packages/shop/b/helpers.py", line 2, in normalize\n'
        "AttributeError: 'NoneType' object has no attribute 'lower'\n"
    )
    result = locate(repo.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/b/helpers.py"
    assert "traceback: line 2 in normalize" in result.files[0].why
    # The same basename in another package is not the file the traceback names.
    other = next((f for f in result.files if f.path == "shop/a/helpers.py"), None)
    assert other is None or not any(w.startswith("traceback") for w in other.why)


def test_every_repo_frame_of_a_traceback_ranks_high(repo, cache):
    issue = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/shop/shipping.py", line 2, in shipping_cost\n'
        '  File "/srv/app/shop/b/helpers.py", line 2, in normalize\n'
        "AttributeError: 'NoneType' object has no attribute 'lower'\n"
    )
    result = locate(repo.path, issue, cache_dir=cache)
    assert set(paths(result)[:2]) == {"shop/shipping.py", "shop/b/helpers.py"}


def test_a_class_defined_in_one_file_ranks_it_first(repo, cache):
    result = locate(repo.path, "InvoiceCalculator gives the wrong answer", cache_dir=cache)
    assert paths(result)[0] == "shop/billing.py"
    assert "defines InvoiceCalculator" in result.files[0].why
    top = result.symbols[0]
    assert (top.path, top.name, top.line) == ("shop/billing.py", "InvoiceCalculator", 1)


def test_test_files_are_weighed_down_unless_cited(repo, cache):
    result = locate(repo.path, "InvoiceCalculator total is wrong", cache_dir=cache)
    assert paths(result).index("shop/billing.py") < paths(result).index("tests/test_billing.py")
    cited = locate(repo.path, "tests/test_billing.py fails", cache_dir=cache)
    assert paths(cited)[0] == "tests/test_billing.py"
    assert "named in the issue: tests/test_billing.py" in cited.files[0].why


def test_a_dotted_module_path_is_evidence(repo, cache):
    result = locate(repo.path, "`shop.shipping.shipping_cost` ignores weight", cache_dir=cache)
    assert paths(result)[0] == "shop/shipping.py"
    assert "module cited: shop.shipping.shipping_cost" in result.files[0].why


def test_as_of_reads_code_at_the_revision(repo, cache):
    before = repo.head()
    repo.commit("Add refunds", {"shop/refunds.py": "class RefundLedger:\n    pass\n"})
    assert paths(locate(repo.path, "RefundLedger", cache_dir=cache))[0] == "shop/refunds.py"
    as_of = AsOf.resolve(repo.path, before)
    result = locate(repo.path, "RefundLedger refunds.py", cache_dir=cache, as_of=as_of)
    assert "shop/refunds.py" not in paths(result)
    assert all(s.path != "shop/refunds.py" for s in result.symbols)


def test_as_of_ignores_later_edits_of_a_file(repo, cache):
    before = repo.head()
    repo.commit("Add discounts", {"shop/util.py": UTIL + "\n\nclass DiscountRule:\n    pass\n"})
    as_of = AsOf.resolve(repo.path, before)
    result = locate(repo.path, "DiscountRule", cache_dir=cache, as_of=as_of)
    assert not any("DiscountRule" in w for f in result.files for w in f.why)
    assert all(s.name != "DiscountRule" for s in result.symbols)


def test_uncommitted_edits_are_ignored(repo, cache):
    repo.write("shop/util.py", UTIL + "\nclass ZebraStripes:\n    pass\n")
    repo.write("shop/draft.py", "class ZebraStripes:\n    pass\n")
    result = locate(repo.path, "ZebraStripes", cache_dir=cache)
    assert result.files == [] and result.symbols == []


def test_history_names_the_similar_commit(repo, cache, tmp_path):
    fix = repo.commit(
        "Fix currency rounding of invoice totals",
        {"shop/billing.py": BILLING.replace("round(sum(lines), 1)", "round(sum(lines), 2)")},
    )
    repo.commit("Tidy helpers", {"shop/util.py": UTIL + "\n"})
    store = MemoryStore(tmp_path / "store")
    mine(repo.path, store)
    result = locate(repo.path, "currency rounding is off", store=store, cache_dir=cache)
    billing = next(f for f in result.files if f.path == "shop/billing.py")
    history = [w for w in billing.why if w.startswith("changed by similar commits: ")]
    assert len(history) == 1
    # The most similar commit is named first.
    assert history[0].startswith(
        f"changed by similar commits: {fix[:8]} Fix currency rounding of invoice totals"
    )
    assert billing.signals["history"] == 1.0
    assert paths(result)[0] == "shop/billing.py"


def test_history_as_of_hides_later_commits(repo, cache, tmp_path):
    before = repo.head()
    fix = repo.commit(
        "Fix currency rounding of invoice totals",
        {"shop/billing.py": BILLING.replace("round(sum(lines), 1)", "round(sum(lines), 2)")},
    )
    store = MemoryStore(tmp_path / "store")
    mine(repo.path, store)
    as_of = AsOf.resolve(repo.path, before)
    result = locate(
        repo.path, "currency rounding is off", store=store, cache_dir=cache, as_of=as_of
    )
    assert not any(fix[:8] in w for f in result.files for w in f.why)


def test_no_evidence_no_files(repo, cache):
    assert locate(repo.path, "", cache_dir=cache).files == []
    assert locate(repo.path, "qwertyuiop asdfghjkl", cache_dir=cache).files == []


def test_deterministic_and_k(repo, cache):
    issue = "InvoiceCalculator total, shipping_cost and clamp are all wrong"
    first = locate(repo.path, issue, cache_dir=cache, k=2)
    again = locate(repo.path, issue, cache_dir=cache, k=2)
    assert first.to_json() == again.to_json()
    assert len(first.files) == 2
    assert len(first.symbols) <= 2


def test_scores_are_ordered(repo, cache):
    result = locate(repo.path, "InvoiceCalculator format_amount clamp normalize", cache_dir=cache)
    scores = [f.score for f in result.files]
    assert scores == sorted(scores, reverse=True)
    sym_scores = [s.score for s in result.symbols]
    assert sym_scores == sorted(sym_scores, reverse=True)


def test_path_resolver_prefers_the_longest_suffix():
    resolver = PathResolver(["shop/a/helpers.py", "shop/b/helpers.py", "docs/helpers.md"])
    assert resolver.resolve("/site-packages/shop/b/helpers.py") == [("shop/b/helpers.py", 3)]
    assert sorted(resolver.resolve("helpers.py")) == [
        ("shop/a/helpers.py", 1),
        ("shop/b/helpers.py", 1),
    ]
    assert resolver.resolve("nothing.py") == []
    assert resolver.module("shop.b.helpers.normalize") == ("shop/b/helpers.py", ["normalize"])


@pytest.mark.parametrize(
    "path, expected",
    [
        ("tests/test_billing.py", True),
        ("shop/test_util.py", True),
        ("conftest.py", True),
        ("src/app.spec.ts", True),
        ("pkg/util_test.go", True),
        ("shop/billing.py", False),
        ("shop/contest.py", False),
    ],
)
def test_is_test_path(path, expected):
    assert is_test_path(path) is expected


# -- the issue's own evidence: error messages, traceback ends, examples, links -------------

ERRORS = """\
class CurrencyMismatch(Exception):
    pass


def convert(amount, currency):
    if currency not in RATES:
        raise CurrencyMismatch(f"No exchange rate known for currency {currency!r} today")
    return amount * RATES[currency]


RATES = {"EUR": 1.0}
"""


@pytest.fixture
def shop(repo):
    repo.commit("Add currency conversion", {"shop/currency.py": ERRORS})
    return repo


def test_an_error_message_finds_the_code_that_raises_it(shop, cache):
    issue = (
        "Converting prices fails\n\n"
        "shop.currency.CurrencyMismatch: No exchange rate known for currency 'GBP' today\n"
    )
    result = locate(shop.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/currency.py"
    why = result.files[0].why
    assert any(w.startswith("raises the message: No exchange rate known for currency") for w in why)
    assert result.files[0].signals["raised"] == 1.0


def test_an_error_message_at_another_revision_is_looked_up_there(shop, cache):
    before = shop.head()
    shop.commit("Reword", {"shop/currency.py": ERRORS.replace("No exchange rate", "Missing rate")})
    issue = "shop.currency.CurrencyMismatch: No exchange rate known for currency 'GBP' today"
    now = locate(shop.path, issue, cache_dir=cache)
    assert all(f.signals.get("raised", 0) == 0 for f in now.files)
    then = locate(shop.path, issue, cache_dir=cache, as_of=AsOf.resolve(shop.path, before))
    assert then.files[0].path == "shop/currency.py" and then.files[0].signals["raised"] == 1.0


def test_a_name_in_the_error_message_is_the_object_that_failed(repo, cache):
    issue = (
        "Totals with discounts\n\n"
        "TypeError: InvoiceCalculator.total() got an unexpected keyword argument 'discount'\n"
    )
    result = locate(repo.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/billing.py"
    assert "defines InvoiceCalculator.total (in the error message)" in result.files[0].why


def test_the_deepest_frame_of_a_traceback_leads(repo, cache):
    issue = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/shop/shipping.py", line 2\n'
        '  File "/srv/app/shop/util.py", line 2\n'
        '  File "/srv/app/shop/b/helpers.py", line 2\n'
        "AttributeError: 'NoneType' object has no attribute 'lower'\n"
    )
    result = locate(repo.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/b/helpers.py"
    top = {f.path: f.signals for f in result.files}
    assert top["shop/b/helpers.py"]["trace_tail"] == 1.0
    assert top["shop/shipping.py"]["trace_head"] == 1.0
    assert top["shop/util.py"].get("trace_tail", 0) == 0


def test_a_call_in_the_example_is_resolved_through_its_import(repo, cache):
    issue = (
        "Amounts print badly\n\n```python\nimport shop.billing as sb\n"
        "calc = sb.InvoiceCalculator()\nprint(sb.format_amount(calc.total([1.005])))\n```\n"
    )
    result = locate(repo.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/billing.py"
    billing = result.files[0]
    assert "defines format_amount (called in the example)" in billing.why
    assert "defines InvoiceCalculator.total (called in the example)" in billing.why
    assert billing.signals["call"] > 0


def test_a_link_to_a_file_on_the_repository_host_names_it(repo, cache):
    issue = "Wrong rounding, see https://github.com/acme/shop/blob/main/shop/util.py#L2"
    result = locate(repo.path, issue, cache_dir=cache)
    assert paths(result)[0] == "shop/util.py"
    assert "named in the issue: shop/util.py" in result.files[0].why


def test_two_words_name_a_file_written_as_one(git_repo, cache):
    git_repo.commit(
        "Initial",
        {
            "docs/builders/manpage.py": "def write(pages):\n    return pages\n",
            "docs/builders/html.py": "def write(pages):\n    return pages\n",
        },
    )
    result = locate(git_repo.path, "The man page output drops sections", cache_dir=cache)
    assert paths(result)[0] == "docs/builders/manpage.py"
    assert result.files[0].signals["pathname"] == 1.0


def test_files_that_change_together_with_the_leading_one(git_repo, cache, tmp_path):
    git_repo.commit(
        "Initial",
        {
            "calc/parser.py": "def parse_expression(text):\n    return text\n",
            "calc/table.py": "TABLE = {}\n",
            "calc/other.py": "def unrelated():\n    pass\n",
        },
    )
    for i in range(3):
        git_repo.commit(
            f"Grammar change {i}",
            {
                "calc/parser.py": f"def parse_expression(text):\n    return text  # {i}\n",
                "calc/table.py": f"TABLE = {{{i}: {i}}}\n",
            },
        )
    git_repo.commit("Other change", {"calc/other.py": "def unrelated():\n    return 1\n"})
    store = MemoryStore(tmp_path / "store")
    mine(git_repo.path, store)
    result = locate(git_repo.path, "parse_expression rejects exponents", store=store, cache_dir=cache)
    assert paths(result)[0] == "calc/parser.py"
    signals = {f.path: f.signals for f in result.files}
    assert signals["calc/table.py"]["cochange"] == 1.0
    # It shared only the first commit with the parser, one of the parser's four.
    assert signals["calc/other.py"]["cochange"] == 0.25
