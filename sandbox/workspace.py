"""Workspaces: a private git repository holding a commit plus (optionally) the user's changes.

A workspace is a standalone repository (`git init` + an `objects/info/alternates` entry pointing
at the user's object store) rather than a linked `git worktree`: git then works fully inside the
sandbox (add, commit, stash, branch write only to the workspace's own `.git`), while the user's
repository, object store included, stays read-only. It is also no slower to create (README.md).
The user's working tree, index, stash and object store are never written: their uncommitted and
untracked changes are captured through a temporary copy of their index with objects written to
the workspace's store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox.config import SandboxConfig

IDENTITY = {
    "GIT_AUTHOR_NAME": "evoagent",
    "GIT_AUTHOR_EMAIL": "evoagent@localhost",
    "GIT_COMMITTER_NAME": "evoagent",
    "GIT_COMMITTER_EMAIL": "evoagent@localhost",
}
WORKSPACE_CONFIG = """\
[user]
\tname = evoagent
\temail = evoagent@localhost
[commit]
\tgpgsign = false
[core]
\thooksPath = /dev/null
[gc]
\tauto = 0
"""
# Never source: kept out of checkpoints and diffs even where the repo does not ignore them.
DEFAULT_EXCLUDES = "__pycache__/\n*.py[cod]\n.pytest_cache/\n"
STATE_DIR = ".evoagent"


class GitError(RuntimeError):
    pass


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    run_env = {**os.environ, **IDENTITY, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, env=run_env, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed in {cwd}: {message}")
    return proc.stdout.decode("utf-8", "replace")


def _object_dirs(objects: Path) -> list[Path]:
    """`objects` and every object directory it borrows from through alternates."""
    seen: list[Path] = []
    stack = [objects.resolve()]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        alternates = current / "info" / "alternates"
        if alternates.is_file():
            for line in alternates.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    stack.append((current / line.strip()).resolve())
    return seen


@dataclass
class Workspace:
    path: Path
    """The workspace's working tree (its .git is a directory inside it)."""
    repo: Path
    """The user's repository (top level), read-only to us."""
    rev: str
    """The commit the workspace was made from."""
    base: str
    """The baseline commit: `rev`, or a commit on top of it holding the user's changes."""
    borrowed_objects: tuple[Path, ...]
    """Object directories the workspace reads through alternates (the user's, and theirs)."""

    @classmethod
    def create(
        cls,
        repo: Path,
        base_dir: Path,
        rev: str = "HEAD",
        include_user_changes: bool = True,
        id: str | None = None,
        history: bool = True,
    ) -> Workspace:
        """Make `base_dir/<id>` hold commit `rev`; when `rev` is the user's HEAD and
        `include_user_changes`, also their staged, unstaged and untracked (not ignored) changes.
        User changes are relative to HEAD, so they are never applied to another commit.

        `history=False` makes a workspace that holds `rev`'s tree and nothing else: one root
        commit, its objects copied in, no alternates. A benchmark task at P needs that — with
        the user's object store borrowed, the agent could dig up the very commit it is asked
        to reproduce (`git cat-file --batch-all-objects`)."""
        repo = Path(repo)
        top = Path(git(repo, "rev-parse", "--show-toplevel").strip())
        paths = git(top, "rev-parse", "--path-format=absolute", "--git-common-dir", "--git-dir")
        common, git_dir = (Path(p) for p in paths.split())
        sha = git(top, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
        base_dir = Path(base_dir).resolve()
        path = base_dir / (id or uuid.uuid4().hex[:12])
        path.mkdir(parents=True)
        if not (base_dir / ".gitignore").exists():
            # Keeps the sandboxes out of the user's `git status` without touching their .git.
            (base_dir / ".gitignore").write_text("*\n")
        try:
            git(path, "init", "-q", "--template=")
            dot_git = path / ".git"
            (dot_git / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
            with open(dot_git / "config", "a") as handle:
                handle.write(WORKSPACE_CONFIG)
            (dot_git / "info").mkdir(exist_ok=True)
            user_excludes = common / "info" / "exclude"
            excludes = user_excludes.read_text() if user_excludes.is_file() else ""
            (dot_git / "info" / "exclude").write_text(excludes + "\n" + DEFAULT_EXCLUDES)
            base = sha
            if not history:
                base = _without_history(path, sha)
            elif include_user_changes and sha == _head(top):
                base = _capture_user_changes(top, git_dir, path, sha, base_dir)
            git(path, "checkout", "-q", "--detach", base)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        borrowed = tuple(_object_dirs(common / "objects")) if history else ()
        return cls(path, top, sha, base, borrowed)

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def checkpoint(self, message: str) -> str:
        """Commit everything in the workspace (no hooks, no signing, fixed identity); the sha."""
        git(self.path, "add", "-A")
        git(
            self.path,
            *("-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "--allow-empty"),
            *("-m", message),
        )
        return self.head()

    def diff_since_base(self) -> str:
        """The patch from the baseline to the workspace as it is now (untracked files included)."""
        git(self.path, "add", "-A")
        return git(
            self.path,
            *("diff", "--cached", "--binary", "--no-color", "--no-ext-diff"),
            *("--src-prefix=a/", "--dst-prefix=b/", self.base),
        )

    def reset_to(self, sha: str) -> None:
        """Make the workspace exactly commit `sha` (untracked files removed; ignored kept)."""
        git(self.path, "reset", "-q", "--hard", sha)
        git(self.path, "clean", "-fdq")

    def sandbox_config(self, **settings: object) -> SandboxConfig:
        """A SandboxConfig that makes this workspace writable, its borrowed objects readable
        and the user's repository itself hidden; `settings` are passed to SandboxConfig."""
        return SandboxConfig(
            writable=(self.path,),
            readable=self.borrowed_objects,
            hidden=(self.repo,),
            **settings,  # type: ignore[arg-type]
        )

    def remove(self) -> None:
        """Delete the workspace. Nothing is registered in the user's repository to clean up."""
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _without_history(ws: Path, sha: str) -> str:
    """Replace the workspace's view of the user's objects by a copy of `sha`'s tree under a
    parentless commit; the new commit's sha. Only the objects reachable from that commit are
    packed (`--window=0`: no delta search, the slow part), then the alternates go."""
    tree = git(ws, "rev-parse", f"{sha}^{{tree}}").strip()
    # Dated like `sha`, so the same commit always gives the same base (runs compare).
    date = git(ws, "show", "-s", "--format=%cI", sha).strip()
    base = git(ws, "commit-tree", tree, "-m", f"evoagent: {sha} (history withheld)",
               env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}).strip()
    git(ws, "update-ref", "refs/heads/base", base)
    env = {**os.environ, "GIT_DIR": str(ws / ".git")}
    objects = subprocess.run(["git", "rev-list", "--objects", base], env=env,
                             capture_output=True, check=True).stdout
    packed = subprocess.run(
        ["git", "-c", "pack.compression=1", "pack-objects", "-q", "--window=0",
         str(ws / ".git" / "objects" / "pack" / "pack")],
        input=objects, env=env, capture_output=True,
    )
    if packed.returncode != 0:
        raise GitError(f"git pack-objects failed in {ws}: {packed.stderr.decode(errors='replace')}")
    (ws / ".git" / "objects" / "info" / "alternates").unlink()
    return base


def _head(top: Path) -> str | None:
    try:
        return git(top, "rev-parse", "--verify", "-q", "HEAD").strip()
    except GitError:
        return None


def _ignored(top: Path, rel: str) -> bool:
    return subprocess.run(
        ["git", "-C", str(top), "check-ignore", "-q", "--", rel], capture_output=True
    ).returncode == 0


def _capture_user_changes(top: Path, git_dir: Path, ws: Path, head: str, base_dir: Path) -> str:
    """A commit on `head` whose tree is the user's working tree (tracked + untracked, minus
    ignored and evoagent's own state); `head` itself when there are no changes. Works on a copy
    of the user's index and writes objects only to the workspace."""
    with tempfile.TemporaryDirectory(dir=ws / ".git") as tmp:
        index = Path(tmp) / "index"
        # The workspace's store borrows the user's through alternates, so reads still work.
        env = {"GIT_INDEX_FILE": str(index), "GIT_OBJECT_DIRECTORY": str(ws / ".git" / "objects")}
        if (git_dir / "index").is_file():
            shutil.copyfile(git_dir / "index", index)
        else:
            git(top, "read-tree", head, env=env)
        own = [STATE_DIR]
        if base_dir.is_relative_to(top):
            own.append(base_dir.relative_to(top).as_posix())
        # An exclude pathspec naming an already-ignored path makes `git add` fail, so only
        # paths git would otherwise pick up are excluded explicitly.
        excludes = [f":(exclude,top){p}" for p in own if not _ignored(top, p)]
        git(top, "add", "-A", "--", ":(top)", *excludes, env=env)
        tree = git(top, "write-tree", env=env).strip()
    if tree == git(ws, "rev-parse", f"{head}^{{tree}}").strip():
        return head
    message = "evoagent: baseline (HEAD + uncommitted changes)"
    return git(ws, "commit-tree", tree, "-p", head, "-m", message).strip()
