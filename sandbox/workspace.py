"""Workspaces: a private git repository holding a commit plus (optionally) the user's changes.

A workspace is two directories side by side, `<id>/tree` (the work tree the sandbox may write)
and `<id>/git` (its git directory, which the sandbox may only read, at `tree/.git`). Host-side
git on a workspace always goes through `hostgit` with both named explicitly: nothing the
sandbox wrote (a `.git` file, config, hooks, attributes, nested repositories) is read by a git
process on the host. The repository is standalone (`git init` + an `objects/info/alternates`
entry pointing at the user's object store) rather than a linked `git worktree`, so the user's
repository, object store included, stays read-only and hidden. The user's working tree, index,
stash and object store are never written: their uncommitted and untracked changes are captured
through a temporary copy of their index with objects written to the workspace's store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox import hostgit
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.hostgit import IDENTITY, GitError

# `bare = false` without `worktree`: inside the sandbox, git finds this directory at
# `tree/.git` and takes its parent as the work tree; on the host it is always told both.
WORKSPACE_CONFIG = """\
[core]
\tbare = false
\thooksPath = /dev/null
\tfsmonitor = false
[user]
\tname = evoagent
\temail = evoagent@localhost
[commit]
\tgpgsign = false
[gc]
\tauto = 0
"""
# Never source: kept out of checkpoints and diffs even where the repo does not ignore them.
DEFAULT_EXCLUDES = "__pycache__/\n*.py[cod]\n.pytest_cache/\n"
# Untracked top-level directories that are environments or caches, not the repository's
# content: never copied into a workspace (a venv is shown read-only where tests need it).
# Python's venv writes no self-ignoring .gitignore before 3.13, and many repos do not ignore
# it: copying one cost ~2,700 files and 45 MB per run.
ENVIRONMENT_DIRS = (".venv", "venv", ".tox", ".nox", "node_modules", "__pypackages__",
                    ".mypy_cache", ".ruff_cache", ".pytest_cache")
STATE_DIR = ".evoagent"

__all__ = ["GitError", "Workspace", "git"]


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """git in a repository the person owns (theirs, or one evoagent made and no sandbox can
    write). A workspace's tree is not one: use `Workspace.git`."""
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
    """The workspace's working tree (`<id>/tree`), the only part the sandbox may write."""
    repo: Path
    """The user's repository (top level), read-only to us."""
    rev: str
    """The commit the workspace was made from."""
    base: str
    """The baseline commit: `rev`, or a commit on top of it holding the user's changes."""
    borrowed_objects: tuple[Path, ...]
    """Object directories the workspace reads through alternates (the user's, and theirs)."""
    git_dir: Path | None = None
    """The workspace's git directory (`<id>/git`): outside the tree, never writable in the
    sandbox. Defaults to `path.parent / "git"`."""

    def __post_init__(self) -> None:
        if self.git_dir is None:
            self.git_dir = self.path.parent / "git"

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
        common, user_git_dir = (Path(p) for p in paths.split())
        sha = git(top, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
        base_dir = Path(base_dir).resolve()
        root = base_dir / (id or uuid.uuid4().hex[:12])
        root.mkdir(parents=True)
        if not (base_dir / ".gitignore").exists():
            # Keeps the sandboxes out of the user's `git status` without touching their .git.
            (base_dir / ".gitignore").write_text("*\n")
        path, git_dir = root / "tree", root / "git"
        try:
            path.mkdir()
            (path / ".git").mkdir()  # the mount point of the read-only history in the sandbox
            git(root, "init", "-q", "--bare", "--template=", str(git_dir))
            (git_dir / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
            (git_dir / "config").write_text(
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n" + WORKSPACE_CONFIG
            )
            (git_dir / "info").mkdir(exist_ok=True)
            user_excludes = common / "info" / "exclude"
            excludes = user_excludes.read_text() if user_excludes.is_file() else ""
            (git_dir / "info" / "exclude").write_text(excludes + "\n" + DEFAULT_EXCLUDES)
            workspace = cls(path, top, sha, sha, (), git_dir)
            base = sha
            if not history:
                base = _without_history(workspace, sha)
            elif include_user_changes and sha == _head(top):
                base = _capture_user_changes(top, user_git_dir, workspace, sha, base_dir)
            workspace.git("checkout", "-q", "--detach", base)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        borrowed = tuple(_object_dirs(common / "objects")) if history else ()
        return cls(path, top, sha, base, borrowed, git_dir)

    def git(self, *args: str, env: dict[str, str] | None = None,
            input: bytes | None = None) -> str:
        """git on this workspace from the host: our git directory, this tree, nothing the
        sandbox wrote (see hostgit). Nested repositories in the tree are removed first."""
        hostgit.strip_nested_repos(self.path)
        proc = hostgit.run(self.git_dir, self.path, *args, env=env, input=input)
        return proc.stdout.decode("utf-8", "replace")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def checkpoint(self, message: str, allow_empty: bool = True) -> str:
        """Commit everything in the workspace (no hooks, no signing, fixed identity); the sha.
        `allow_empty=False` commits only when the tree changed since HEAD (else HEAD): the
        agent reads this history, and bookkeeping commits would only puzzle it."""
        self.git("add", "-A")
        if not allow_empty and not self.git("diff", "--cached", "--name-only", "HEAD").strip():
            return self.head()
        self.git("commit", "-q", "--no-verify", "--allow-empty", "-m", message)
        return self.head()

    def diff_since_base(self) -> str:
        """The patch from the baseline to the workspace as it is now (untracked files included)."""
        self.git("add", "-A")
        return self.diff(self.base)

    def diff(self, old: str, new: str | None = None, *options: str) -> str:
        """`git diff` between commits (or `old` and the index), in the patch form every
        caller parses and applies."""
        return self.git(
            "diff", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
            "--src-prefix=a/", "--dst-prefix=b/", *options,
            *(["--cached", old] if new is None else [old, new]),
        )

    def reset_to(self, sha: str, ignored: bool = False) -> None:
        """Make the workspace exactly commit `sha`: untracked files removed, and with
        `ignored` also the ignored ones (nothing left that a patch does not describe)."""
        self.git("reset", "-q", "--hard", sha)
        self.git("clean", "-fdq" + ("x" if ignored else ""))

    def apply(self, patch: str) -> None:
        """Apply `patch` to the tree (GitError when it does not apply)."""
        if patch.strip():
            self.git("apply", "--binary", "--whitespace=nowarn", "-",
                     input=patch.encode("utf-8", "surrogateescape"))

    def sandbox_config(self, **settings: object) -> SandboxConfig:
        """A SandboxConfig that shows this workspace's tree, writable, where the repository
        stands (so editable installs, `.pth` files and child interpreters import the agent's
        change, never the user's checkout, which it hides), its history read-only at `.git`,
        and the object stores it borrows read-only; `settings` are passed to SandboxConfig.

        The user's object store usually lives in the repository's own `.git`, which the
        workspace's git directory covers inside the sandbox, so borrowed stores under the
        repository are shown at `/tmp/.evoagent-history-<id>/<n>` and named to git through
        GIT_ALTERNATE_OBJECT_DIRECTORIES (the alternates file, written for the host, then
        names the workspace's own store, which git skips)."""
        assert self.git_dir is not None
        readable, moved = [], []
        for objects in self.borrowed_objects:
            if objects.is_relative_to(self.repo):
                # Inside /tmp's fresh tmpfs; named per workspace, and checked on the host like
                # every read-only bind (a planted link there only costs the history view).
                moved.append((objects, Path(f"/tmp/.evoagent-history-{self.path.parent.name}/{len(moved)}")))
            else:
                readable.append(objects)
        env = dict(settings.pop("env", None) or {})  # type: ignore[call-overload]
        if moved:
            env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = ":".join(str(d) for _, d in moved)
        return SandboxConfig(
            readable=tuple(readable),
            hidden=(self.repo,),
            views=((self.path, self.repo),),
            ro_binds=((self.git_dir, self.path / ".git"), *moved),
            env=env,
            **settings,  # type: ignore[arg-type]
        )

    def remove(self) -> None:
        """Delete the workspace. Nothing is registered in the user's repository to clean up."""
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _without_history(ws: Workspace, sha: str) -> str:
    """Replace the workspace's view of the user's objects by a copy of `sha`'s tree under a
    parentless commit; the new commit's sha. Only the objects reachable from that commit are
    packed (`--window=0`: no delta search, the slow part), then the alternates go."""
    tree = ws.git("rev-parse", f"{sha}^{{tree}}").strip()
    # Dated like `sha`, so the same commit always gives the same base (runs compare).
    date = ws.git("show", "-s", "--format=%cI", sha).strip()
    base = ws.git("commit-tree", tree, "-m", f"evoagent: {sha} (history withheld)",
                  env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}).strip()
    ws.git("update-ref", "refs/heads/base", base)
    objects = ws.git("rev-list", "--objects", base).encode()
    pack = str(ws.git_dir / "objects" / "pack" / "pack")
    ws.git("-c", "pack.compression=1", "pack-objects", "-q", "--window=0", pack, input=objects)
    (ws.git_dir / "objects" / "info" / "alternates").unlink()
    return base


def _head(top: Path) -> str | None:
    try:
        return git(top, "rev-parse", "--verify", "-q", "HEAD").strip()
    except GitError:
        return None


def _environments(top: Path) -> list[str]:
    """Top-level untracked directories not to copy: the usual environment and cache names,
    and any directory holding a `pyvenv.cfg` (a virtualenv by any name). One that git tracks
    files in is the repository's content and is copied."""
    found = [name for name in ENVIRONMENT_DIRS if (top / name).is_dir()]
    for entry in os.scandir(top):
        if (entry.is_dir(follow_symlinks=False) and entry.name not in found
                and os.path.isfile(os.path.join(entry.path, "pyvenv.cfg"))):
            found.append(entry.name)
    return [name for name in found if not git(top, "ls-files", "--", name).strip()]


def _ignored(top: Path, rel: str) -> bool:
    return subprocess.run(
        ["git", "-C", str(top), "check-ignore", "-q", "--", rel], capture_output=True
    ).returncode == 0


def _capture_user_changes(
    top: Path, git_dir: Path, ws: Workspace, head: str, base_dir: Path
) -> str:
    """A commit on `head` whose tree is the user's working tree (tracked + untracked, minus
    ignored and evoagent's own state); `head` itself when there are no changes. Works on a copy
    of the user's index and writes objects only to the workspace."""
    with tempfile.TemporaryDirectory(dir=ws.git_dir) as tmp:
        index = Path(tmp) / "index"
        # The workspace's store borrows the user's through alternates, so reads still work.
        env = {"GIT_INDEX_FILE": str(index), "GIT_OBJECT_DIRECTORY": str(ws.git_dir / "objects")}
        if (git_dir / "index").is_file():
            shutil.copyfile(git_dir / "index", index)
        else:
            git(top, "read-tree", head, env=env)
        own = [STATE_DIR, *_environments(top)]
        if base_dir.is_relative_to(top):
            own.append(base_dir.relative_to(top).as_posix())
        # An exclude pathspec naming an already-ignored path makes `git add` fail, so only
        # paths git would otherwise pick up are excluded explicitly.
        excludes = [f":(exclude,top){p}" for p in own if not _ignored(top, p)]
        git(top, "add", "-A", "--", ":(top)", *excludes, env=env)
        tree = git(top, "write-tree", env=env).strip()
    if tree == ws.git("rev-parse", f"{head}^{{tree}}").strip():
        return head
    message = "evoagent: baseline (HEAD + uncommitted changes)"
    return ws.git("commit-tree", tree, "-p", head, "-m", message).strip()
