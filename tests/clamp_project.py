"""The small project several front-end tests build (the app's, the ACP server's): `clamp`
returns the lower bound above the upper one, and of its two tests `test_above` fails."""

from __future__ import annotations

CALC = '''def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return low
    return value
'''
TESTS = '''from calc import clamp


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_above():
    assert clamp(15, 0, 10) == 10
'''
PYPROJECT = '[tool.pytest.ini_options]\npythonpath = ["."]\n'
"""Lets the tests import `calc` from the repository root."""

FILES = {"calc.py": CALC, "tests/test_calc.py": TESTS, "pyproject.toml": PYPROJECT}
"""The first commit of the project."""

FIX_PATCH = """diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -3,4 +3,4 @@ def clamp(value, low, high):
         return low
     if value > high:
-        return low
+        return high
     return value
"""
"""The fix, as git diff shows it: the upper branch returns `high`."""
