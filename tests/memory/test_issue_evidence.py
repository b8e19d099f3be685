"""What an issue's text says, before any repository is read."""

from __future__ import annotations

from evoagent.memory import codeindex, issue_evidence
from evoagent.memory.issue_evidence import extract, extract_calls, message_fragments


def test_issues_and_code_split_identifiers_the_same_way():
    assert issue_evidence.split_identifier is codeindex.split_identifier
    words = extract("utf8 names break b64decode over http2").words
    assert {"utf8", "b64", "decode", "http2"} <= set(words)
    assert "utf" not in words and "8" not in words


def test_exception_lines_and_their_literal_fragments():
    text = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "TypeError: RST.__init__() got an unexpected keyword argument 'header_rows'\r\n"
        "E   ValueError: Invalid fill method. Expecting pad (ffill), backfill (bfill) or nearest.\n"
        "INTERNALERROR> RuntimeError: No active exception to reraise\n"
        "astropy.units.core.UnitsError: 'm' (length) and 's' (time) are not convertible\n"
    )
    ev = extract(text)
    assert [e for e, _ in ev.errors] == ["TypeError", "ValueError", "RuntimeError", "UnitsError"]
    assert ev.errors[0][1] == "RST.__init__() got an unexpected keyword argument 'header_rows'"
    assert message_fragments(ev.errors[1][1]) == ["Invalid fill method. Expecting pad"]
    assert message_fragments("No exchange rate known for currency 'GBP' today") == [
        "No exchange rate known for currency"
    ]
    assert message_fragments("bad value 3") == []  # too short to be specific
    assert extract("pkg.errors.Mismatch: no rate\nNote: this is prose").errors == [("Mismatch", "no rate")]


def test_frames_know_their_traceback():
    text = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        '  File "b.py", line 2, in g\n'
        "KeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "c.py", line 3, in h\n'
    )
    frames = extract(text).frames
    assert [(f.path, f.block) for f in frames] == [("a.py", 1), ("b.py", 1), ("c.py", 2)]


def test_links_to_a_repository_host_name_paths():
    ev = extract(
        "See https://github.com/pydata/xarray/blob/master/xarray/core/merge.py#L504 and "
        "https://gitlab.com/a/b/-/tree/main/src/pkg/"
    )
    assert ev.paths == ["xarray/core/merge.py"]


def test_environment_dumps_are_not_content():
    text = (
        "merge drops attrs\n\nINSTALLED VERSIONS\r\n------------------\r\n"
        "python: 3.6.12\r\npandas: 1.1.4\r\nzarr: None\r\nnumpy==1.19.4\n- dask 2.30.0\n"
    )
    ev = extract(text)
    for dependency in ("pandas", "zarr", "numpy", "dask"):
        assert dependency not in ev.body and dependency not in ev.words and dependency not in ev.naming
    assert "merge" in ev.words and "pandas" in ev.text


def test_naming_words_skip_paths_links_and_fence_tags_and_join_pairs():
    text = (
        "The man page drops type-hints\n\n```python\nrender()\n```\n"
        '  File "/usr/lib/python3/site-packages/pkg/core.py", line 3, in render\n'
        "see https://example.org/docs/config.html\n"
    )
    naming = extract(text).naming
    assert {"manpage", "typehints", "man", "page", "render"} <= naming
    for word in ("python", "python3", "site", "packages", "core", "config", "usr"):
        assert word not in naming


def test_calls_resolve_through_imports_and_assignments():
    code = (
        "import xarray as xr\nfrom sympy import Poly\n"
        "ds = xr.Dataset(attrs={})\nmerged = xr.merge([ds])\n"
        "p = Poly(x)\np.clear_denoms()\nds.sel(x=1)\nunknown.method()\n"
    )
    assert extract_calls(code) == [
        ("module", "xr", "Dataset"),
        ("module", "xr", "merge"),
        ("type", "Poly", "clear_denoms"),
        ("type", "Dataset", "sel"),
    ]
    # `>>>` prompts outside fences count as code too
    ev = extract("Poly is off\n\n>>> f = Poly(x)\n>>> f.terms_gcd()\n")
    assert ("type", "Poly", "terms_gcd") in ev.calls
