"""Parse per-test outcomes from JUnit XML (pytest, gotestsum) and `go test -json` streams.

The report files are written by the repository's tests inside the sandbox, so they are read
with `read_untrusted` (`read_report`): a link, FIFO or oversized file is "no report", never
followed to a host file whose bytes would become test messages.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted

RANK = {"passed": 0, "skipped": 1, "failed": 2, "errors": 3}
REPORT_BYTES = 64 << 20
"""A report larger than this is treated as missing (a suite's JUnit XML with captured output
can be tens of MB; more is not a report worth parsing)."""


def read_report(path: Path, root: Path) -> bytes | None:
    """The bytes of a report file under `root` that sandboxed code wrote, or None when there is
    no report that can be read safely: missing, a link (there or above it, up to `root`), not a
    regular file, or larger than REPORT_BYTES."""
    try:
        return read_untrusted(path, REPORT_BYTES, root=root)
    except UntrustedFileError:
        return None


@dataclass(frozen=True)
class Outcome:
    """One test's result; `message` and `detail` are empty unless it failed or errored."""

    test_id: str
    status: str
    """passed | failed | errors | skipped"""
    message: str = ""
    detail: str = ""


def _module(file: str) -> str:
    return file.removesuffix(".py").replace("/", ".")


def _pytest_id(case: ET.Element, files: dict[str, str]) -> str:
    """A pytest node id from an xunit1 testcase: `classname` is the node id's path (the
    collected file as a dotted module, then its classes) and `name` the last part.

    `file` is where the test function is *defined*, which is not the collected file for a
    test inherited from a base class or imported from another module; the collected file is
    then the longest known test file (`files`: module -> path) whose module starts
    `classname`, else the dotted parts before the first capitalised one (a class)."""
    name = case.get("name", "")
    classname = case.get("classname", "")
    file = case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    if not classname:  # a collection failure: name is the module
        return f"{file}::{name}"
    module = _module(file)
    if classname != module and not classname.startswith(module + "."):
        known = [m for m in files if classname == m or classname.startswith(m + ".")]
        if known:
            module = max(known, key=len)
            file = files[module]
        else:
            parts = classname.split(".")
            cut = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))
            module = ".".join(parts[:cut])
            file = module.replace(".", "/") + ".py"
    rest = classname.removeprefix(module).lstrip(".")
    return "::".join(part for part in (file, *rest.split("."), name) if part)


def parse_junit(report: bytes | Path) -> list[Outcome]:
    """Outcomes in file order; a test reported twice (call failed, teardown errored) keeps
    its worst status. `report` is the XML (from `read_report`) or a file read the same way."""
    data = report if isinstance(report, bytes) else read_untrusted(Path(report), REPORT_BYTES)
    root = ET.fromstring(data)
    cases = list(root.iter("testcase"))
    files: dict[str, str] = {}
    for case in cases:  # the test files whose own tests name them (file matches classname)
        file, classname = case.get("file"), case.get("classname", "")
        if file and (classname == _module(file) or classname.startswith(_module(file) + ".")):
            files[_module(file)] = file
    found: dict[str, Outcome] = {}
    for case in cases:
        test_id = _pytest_id(case, files)
        outcome = Outcome(test_id, "passed")
        for tag, status in (("error", "errors"), ("failure", "failed"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                text = (node.text or "").strip()
                outcome = Outcome(test_id, status, node.get("message", "") or "", text)
                break
        previous = found.get(test_id)
        if previous is None or RANK[outcome.status] > RANK[previous.status]:
            found[test_id] = outcome
    return list(found.values())


def parse_go_json(stream: str) -> list[Outcome]:
    """Outcomes from `go test -json` output (`pkg/TestName` ids; package-level failures too)."""
    output: dict[str, list[str]] = {}
    found: dict[str, Outcome] = {}
    status_of = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    for line in stream.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        key = f"{event.get('Package', '')}/{event['Test']}" if event.get("Test") else ""
        if not key:
            continue
        action = event.get("Action")
        if action == "output":
            output.setdefault(key, []).append(event.get("Output", ""))
        elif action in status_of:
            detail = "".join(output.get(key, [])).strip()
            message = next((ln.strip() for ln in detail.splitlines() if ".go:" in ln), "")
            found[key] = Outcome(
                key,
                status_of[action],
                message if action == "fail" else "",
                detail if action == "fail" else "",
            )
    return list(found.values())
