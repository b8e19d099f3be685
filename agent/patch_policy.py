"""What of an agent's patch may reach the person's checkout, and what may decide its verdict.

One pure decision over the patch text (`git diff --binary` of the workspace) and the base's
files, so the solver, `fix --apply/--commit`, the app's accept and the benchmark evaluator all
decide the same way:

- `kept`: the patch without the file sections that must never be written (issue #11, item 6):
  anything in `.git` or `.evoagent/` (case and NTFS/HFS spelling variants too), paths the
  genome's policy protects, submodule gitlinks, symlinks whose target is absolute, leaves the
  repository, or points into `.git`, `.evoagent/` or a protected path, and sections that are
  not exactly what git writes (a sandbox can shape the patch text; a section git would read
  differently from us is not trusted). A section goes whole, with every section that touches
  the same path or a path above or below it, so what is left still applies.
- `infrastructure`: kept changes that can decide test outcomes instead of the code under test
  (item 5): conftest.py, pytest's configuration (pytest.ini; the pytest parts of tox.ini,
  setup.cfg and pyproject.toml, compared parsed before and after, so a dependency bump is not
  flagged), sitecustomize / usercustomize, .pth files, modules that shadow pytest or pluggy,
  plugin entry points (setup.py naming pytest11, package metadata), compiled bytecode.
- `deciding`: `kept` without the infrastructure; the kernel runs its deciding tests on the
  base plus `deciding` and reports what it left out.

Every reason is one printable line; a link target is echoed at most 120 characters long,
control characters replaced. `path` fields stay exact (for JSON); print them through `str()`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

from .genome import Policy
from .patch_sections import GITLINK, SYMLINK, Section, join, split
from .terminal_text import one_line as printable

OldText = Callable[[str], str | None]
"""A file's content at the base (a symlink's: its target); None when absent or unreadable."""
OldMode = Callable[[str], str | None]
"""A file's git mode at the base ("100644", "120000", "160000"); None when absent."""

_LINK_SHOWN = 120
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
"""Code points HFS+ ignores in names (".g\\u200cit" is ".git" there), as git's is_hfs_dotgit."""
_SHADOWS = {
    "pytest": "the test runner",
    "_pytest": "the test runner",
    "pluggy": "pytest's plugin system",
    "py": "pytest's py module",
}
_STARTUP = ("sitecustomize", "usercustomize")
_WHOLE_CONFIG = frozenset({"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"})
_INI_SECTIONS = {
    "tox.ini": ("pytest", "tool:pytest"),
    "setup.cfg": ("tool:pytest", "pytest", "options.entry_points"),
}
_TOML_PARTS = {
    "[tool.pytest]": ("tool", "pytest"),
    "pytest11 entry points": ("project", "entry-points", "pytest11"),
    "poetry pytest11 plugins": ("tool", "poetry", "plugins", "pytest11"),
    "[tool.evoagent] (evoagent's test settings)": ("tool", "evoagent"),
}


@dataclass(frozen=True)
class Dropped:
    path: str
    """The section's path (both, "old -> new", for a rename), exact; "" for text outside
    any file section."""
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path) or '(patch text)'}: {self.reason}"


@dataclass(frozen=True)
class InfraChange:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path)}: {self.reason}"


@dataclass(frozen=True)
class PatchReview:
    kept: str
    """The patch the person's checkout may receive."""
    dropped: list[Dropped] = field(default_factory=list)
    infrastructure: list[InfraChange] = field(default_factory=list)
    """Kept changes that could decide test outcomes: shown to the person, never counted."""
    deciding: str = ""
    """`kept` without the infrastructure: what the kernel's deciding tests run with."""


def review_patch(
    patch: str,
    policy: Policy,
    old_text: OldText,
    old_mode: OldMode,
) -> PatchReview:
    """Judge `patch` (see the module doc) against the base it was made from. `old_text` is
    asked only about files whose content matters (test configuration, a symlink whose new
    target the hunks alone do not tell, a moved symlink); `old_mode` only about moved files,
    since a pure rename or copy carries no mode and a moved symlink's relative target means
    something else at its new place."""
    parsed = split(patch)
    base = _Base(old_text, old_mode)
    sections = parsed.sections
    dropped: list[Dropped] = []
    if parsed.preamble.strip():
        dropped.append(Dropped("", "text outside any file section"))

    drops = [_drop_reason(s, policy, base) for s in sections]
    for index, path in _repeated_paths(sections).items():
        drops[index] = drops[index] or f"more than one section changes {path}"
    _spread(sections, drops, "goes with the dropped change to {}")
    kept: list[Section] = []
    for section, reason in zip(sections, drops, strict=True):
        if reason:
            dropped.append(Dropped(section.display_path, printable(reason)))
        else:
            kept.append(section)

    flags = [_infrastructure_reason(s, base) for s in kept]
    _spread(kept, flags, "goes with the test infrastructure change to {}")
    infrastructure: list[InfraChange] = []
    deciding: list[Section] = []
    for section, reason in zip(kept, flags, strict=True):
        if reason:
            infrastructure.append(InfraChange(section.display_path, printable(reason)))
        else:
            deciding.append(section)
    return PatchReview(join(kept), dropped, infrastructure, join(deciding))


# --- item 6: what may be written ---------------------------------------------------------


def _drop_reason(section: Section, policy: Policy, base: _Base) -> str | None:
    if not section.well_formed:
        return f"malformed patch section ({section.problem})"
    for path in section.paths:
        reason = _path_reason(path, policy)
        if reason:
            return reason
    old_mode, new_mode = section.old_mode, section.new_mode
    moved = section.old_path is not None and section.new_path is not None
    if moved and old_mode is None and new_mode is None:
        # A pure rename or copy: git writes no mode, the file keeps the one it has.
        old_mode = new_mode = base.mode(section.old_path or "")
        if old_mode is None:
            return "moved file that the base does not have"
    if GITLINK in (old_mode, new_mode):
        return "submodule (gitlink) change"
    if new_mode == SYMLINK and section.new_path is not None:
        target = section.new_text(None)
        if target is None and section.old_path is not None:
            target = section.new_text(base.text(section.old_path))
        if target is None:
            return "symlink whose target cannot be read from the patch and the base"
        return _symlink_reason(section.new_path, target, policy)
    return None


def _path_reason(path: str, policy: Policy) -> str | None:
    if not path or path.startswith("/") or "\0" in path:
        return "invalid path"
    parts = [part for part in path.split("/") if part]  # git squashes repeated slashes
    if any(part in (".", "..") for part in parts):
        return "invalid path (. or .. in it)"
    if any(_is_dotgit(part) for part in parts):
        return "protected path .git"
    if any(_is_evoagent(part) for part in parts):
        return "protected path .evoagent/"
    return _policy_reason(policy, "/".join(parts))


def _policy_reason(policy: Policy, path: str) -> str | None:
    if policy.allows_write(path):
        return None
    glob = _protecting_glob(policy, path)
    if glob is not None:
        return f"protected by the genome's policy ({glob})"
    return "outside the paths the genome's policy lets the agent write"


def _protecting_glob(policy: Policy, path: str) -> str | None:
    return next((g for g in policy.protected if not _only(g).allows_write(path)), None)


@cache
def _only(glob: str) -> Policy:
    return Policy(protected=[glob])


def _symlink_reason(link_path: str, target: str, policy: Policy) -> str | None:
    """Why a symlink at `link_path` to `target` may not be written, or None.

    The target is resolved lexically against the link's own directory. A `..` after a
    directory name is refused outright: that name could itself be a link (in this patch or
    in the checkout), so `a/l1/..` is not `a` on disk, and `l1 -> ..` plus `l2 -> l1/..`
    would each look inside while together they point above the repository."""
    shown = printable(target, _LINK_SHOWN)
    if not target:
        return "symlink with an empty target"
    if target.startswith("/"):
        return f"symlink to outside the repository ({shown})"
    parts = [part for part in target.split("/") if part not in ("", ".")]
    ups = 0
    for index, part in enumerate(parts):
        if part == "..":
            if index != ups:
                return (f"symlink whose target goes up after a directory name ({shown}): "
                        "through another link it can leave the repository")
            ups += 1
    here = [part for part in link_path.split("/") if part][:-1]
    if ups > len(here):
        return f"symlink to outside the repository ({shown})"
    resolved = here[: len(here) - ups] + parts[ups:]
    if any(_is_dotgit(part) for part in resolved):
        return f"symlink into .git ({shown})"
    if any(_is_evoagent(part) for part in resolved):
        return f"symlink into .evoagent/ ({shown})"
    if resolved:
        glob = _protecting_glob(policy, "/".join(resolved))
        if glob is not None:
            return f"symlink to a path the genome's policy protects ({shown})"
    return None


def _name_key(part: str) -> str:
    """A path component as case-insensitive, NTFS (trailing dots and spaces) and HFS+
    (ignorable code points) file systems see it."""
    return part.translate(_HFS_IGNORED).casefold().rstrip(" .")


def _is_dotgit(part: str) -> bool:
    return _name_key(part) in (".git", "git~1")


def _is_evoagent(part: str) -> bool:
    return _name_key(part) in (".evoagent", "evoage~1")


# --- item 5: what may decide the verdict -----------------------------------------------------


def _infrastructure_reason(section: Section, base: _Base) -> str | None:
    for path in section.paths:
        reason = _infrastructure_path(path)
        if reason:
            return reason
    return _configuration_change(section, base)


def _infrastructure_path(path: str) -> str | None:
    parts = [part for part in path.split("/") if part]
    name = parts[-1].casefold()
    dirs = [part.casefold() for part in parts[:-1]]
    where = "/".join(parts[:-1]) or "the repository root"
    stem, _, suffix = name.partition(".")
    importable = suffix in ("py", "pyc", "pyo", "pyw", "so", "pyd") or suffix.endswith(
        (".so", ".pyd", ".pyc")
    )
    if name == "conftest.py":
        return "pytest runs every conftest.py with the tests"
    if name in _WHOLE_CONFIG:
        return f"pytest configuration file {parts[-1]}"
    if name.endswith(".pth"):
        return ".pth file: Python runs its import lines at start-up"
    if (importable and stem in _STARTUP) or any(d in _STARTUP for d in dirs):
        return f"{stem if stem in _STARTUP else 'a start-up module'}: Python imports it at start-up"
    for index, part in enumerate(dirs):
        if part in _SHADOWS and part != "py":
            at = "/".join(parts[: index + 1])
            return (f"module {part} at {at}/ can shadow {_SHADOWS[part]} when its directory "
                    "is on sys.path")
    if importable and stem in _SHADOWS:
        return (f"module {stem} in {where} can shadow {_SHADOWS[stem]} when that directory "
                "is on sys.path")
    if dirs and dirs[-1] == "py" and stem == "__init__" and importable:
        return (f"package py at {'/'.join(parts[:-1])}/ can shadow {_SHADOWS['py']} when its "
                "directory is on sys.path")
    if "__pycache__" in dirs or name.endswith((".pyc", ".pyo")):
        return "compiled Python: it can run instead of the source under test"
    if any(d.endswith((".egg-info", ".dist-info")) for d in dirs) or name.endswith(
        (".egg-info", ".dist-info", ".egg-link")
    ):
        return "package metadata: it can register pytest plugins (entry points)"
    return None


_UNKNOWN = object()
"""A side of a configuration file that could not be read or parsed: counts as a change."""


def _configuration_change(section: Section, base: _Base) -> str | None:
    names = {p.rsplit("/", 1)[-1].casefold() for p in section.paths}
    if not names & {"tox.ini", "setup.cfg", "pyproject.toml", "setup.py"}:
        return None
    old = base.text(section.old_path) if section.old_path is not None else None
    before: object = None if section.old_path is None else (_UNKNOWN if old is None else old)
    after: object = None
    if section.new_path is not None:
        new = section.new_text(old)
        after = _UNKNOWN if new is None else new
    for path, was, now in _locations(section, before, after):
        reason = _config_reason(path, was, now)
        if reason:
            return reason
    return None


def _locations(section: Section, before: object, after: object) -> list[tuple[str, object, object]]:
    """(path, content before, content after) per place the section changes: a rename empties
    its old place and fills its new one."""
    old, new = section.old_path, section.new_path
    if old is not None and new is not None and old != new:
        moved = [(new, None, after)]
        return moved if section.copy else [(old, before, None), *moved]
    return [(new or old or "", before, after)]


def _config_reason(path: str, before: object, after: object) -> str | None:
    name = path.rsplit("/", 1)[-1]
    key = name.casefold()
    if key == "setup.py":
        if before is _UNKNOWN or after is _UNKNOWN:
            return "setup.py could not be read before and after, so it may name pytest plugins"
        if any("pytest11" in text for text in (before, after) if isinstance(text, str)):
            return "setup.py names pytest11 (pytest plugin entry points)"
        return None
    if key in _INI_SECTIONS:
        wanted = _INI_SECTIONS[key]
        was, now = _ini_parts(before, wanted), _ini_parts(after, wanted)
        what = " / ".join(f"[{s}]" for s in wanted)
    elif key == "pyproject.toml":
        was, now = _toml_parts(before), _toml_parts(after)
        what = "the pytest tables"
        if isinstance(was, dict) and isinstance(now, dict):
            changed = [label for label in _TOML_PARTS if was.get(label) != now.get(label)]
            what = ", ".join(changed) or what
    else:
        return None
    if was is _UNKNOWN or now is _UNKNOWN:
        return f"{name} could not be read or parsed, so its pytest configuration may have changed"
    if was != now:
        return f"pytest configuration in {name} changed ({what})"
    return None


def _toml_parts(text: object) -> object:
    if text is _UNKNOWN:
        return _UNKNOWN
    if text is None:
        return {}
    try:
        data = tomllib.loads(text)  # type: ignore[arg-type]
    except ValueError:  # TOMLDecodeError, and text with undecodable bytes
        return _UNKNOWN
    parts = {}
    for label, keys in _TOML_PARTS.items():
        value: object = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            parts[label] = value
    return parts


def _ini_parts(text: object, wanted: Iterable[str]) -> object:
    """The lines any INI reader could place in the wanted sections, per way of cutting lines
    (at "\n" only; at \r\n, \r, \n as configparser reads a file; at every break
    str.splitlines knows, as pytest's iniconfig does). Readers also differ on what a section
    header is ("[x] y" is one for configparser, a continuation line for iniconfig), so a
    wanted section starts at anything any of them reads as its header and ends only at a
    line all of them read as another section's header: an extra line counted changes
    nothing, a missed one could hide a plugin."""
    if text is _UNKNOWN:
        return _UNKNOWN
    if text is None:
        return ((),) * len(_LINE_CUTS)
    assert isinstance(text, str)
    names = {w.casefold() for w in wanted}
    views = []
    for cut in _LINE_CUTS:
        inside, kept = False, []
        for line in cut(text):
            start = _ANY_HEADER.match(line)
            other = _PLAIN_HEADER.fullmatch(line.rstrip())
            if start and start.group(1).strip().casefold() in names:
                inside = True
            elif other and other.group(1).strip().casefold() not in names:
                inside = False
            if inside and line.strip():
                kept.append(line.rstrip())
        views.append(tuple(kept))
    return tuple(views)


_LINE_CUTS = (
    lambda text: text.split("\n"),
    lambda text: re.split(r"\r\n|\r|\n", text),
    str.splitlines,
)
_ANY_HEADER = re.compile(r"\s*\[([^\]]*)\]")
"""What some reader takes for a section header (configparser: "[name]" after any indent,
whatever follows)."""
_PLAIN_HEADER = re.compile(r"\[([^\[\]#;]+)\]")
"""What every reader takes for a section header: "[name]" at column 0 and nothing after."""


# --- helpers --------------------------------------------------------------------------------


class _Base:
    """The base's files as the caller tells them, each asked once."""

    def __init__(self, old_text: OldText, old_mode: OldMode):
        self._text, self._mode = old_text, old_mode
        self._texts: dict[str, str | None] = {}

    def text(self, path: str) -> str | None:
        if path not in self._texts:
            self._texts[path] = self._text(path)
        return self._texts[path]

    def mode(self, path: str) -> str | None:
        return self._mode(path)


def _spread(sections: list[Section], reasons: list[str | None], why: str) -> None:
    """Give every section that touches a decided section's path, or a path above or below
    it, the same fate (a typechange is two sections on one path; a file replaced by a
    directory is a deletion and additions below it): what is left must still apply."""
    keys = [[_key(p) for p in s.paths] for s in sections]
    changed = True
    while changed:
        changed = False
        exact: dict[str, str] = {}
        below: dict[str, str] = {}  # every directory above a decided path -> that path
        for index, reason in enumerate(reasons):
            for key, path in zip(keys[index], sections[index].paths, strict=True):
                if reason:
                    exact.setdefault(key, path)
                    for cut in _ancestors(key):
                        below.setdefault(cut, path)
        for index, reason in enumerate(reasons):
            if reason:
                continue
            for key in keys[index]:
                hit = below.get(key) or next(
                    (exact[k] for k in (key, *_ancestors(key)) if k in exact), None
                )
                if hit is not None:
                    reasons[index] = why.format(hit)
                    changed = True
                    break


def _repeated_paths(sections: list[Section]) -> dict[int, str]:
    """Sections that share a file with another section, other than git's one case (a file
    removed in one section and created in the next: a typechange, or a rename's two ends).
    Each is judged against the base alone, so a second change to the same file could
    undo what the first one's judgement saw."""
    seen: dict[str, list[tuple[int, str, str]]] = {}
    for index, section in enumerate(sections):
        for path in section.paths:
            if path == section.old_path and path != section.new_path and not section.copy:
                role = "removes"
            elif path == section.new_path and path != section.old_path:
                role = "creates"
            else:
                role = "changes"
            seen.setdefault(_key(path), []).append((index, role, path))
    repeated: dict[int, str] = {}
    for uses in seen.values():
        roles = sorted(role for _, role, _ in uses)
        if len(uses) > 1 and roles != ["creates", "removes"]:
            for index, _, path in uses:
                repeated[index] = path
    return repeated


def _key(path: str) -> str:
    return "/".join(_name_key(part) for part in path.split("/") if part)


def _ancestors(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]
