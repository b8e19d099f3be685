"""The genome's own git repository (`.evoagent/agent`): variant branches, lineage notes,
promotion and rollback.

`main` is the live agent and the repository's working tree is always a checkout of it.
A variant is a branch `variants/<id>` forked from its parent, edited in a linked worktree
under `.evoagent/evolve/worktrees/` (this repository is ours, so a linked worktree is fine
here, unlike in the user's repository). A variant's worktree is written by the meta agent
and its sandboxed tools, so git never discovers anything from it: every host git call on a
worktree names the worktree's admin directory (found from this repository's own
`.git/worktrees/*/gitdir`, which nothing sandboxed can write) and the tree explicitly, with
`sandbox.hostgit`'s locked-down environment. Lineage and scores are written as git notes
(`refs/notes/evoagent`) on the variant's head, so the genome repository alone tells the
story. Promotion moves `main` and tags the old one `promoted/<n>-previous`; rollback moves
`main` back to any earlier tag or commit. Both refuse when the live genome has uncommitted
edits (they would be lost).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from evoagent.sandbox import hostgit

from ..errors import EvoError
from ..genome import GENOME_IDENTITY

NOTES_REF = "refs/notes/evoagent"
VARIANT_PREFIX = "variants/"
PROMOTED_TAG = re.compile(r"^promoted/(\d+)-previous$")


class GenomeRepo:
    def __init__(self, path: Path):
        self.path = Path(path)

    def git(self, *args: str, worktree: Path | None = None, check: bool = True,
            stdin: str | None = None) -> str:
        """git on the genome repository, or on one of its linked `worktree`s (named
        explicitly, never discovered from the worktree's own `.git`)."""
        name, email = GENOME_IDENTITY
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        if worktree is None:
            git_dir, tree = self.path / ".git", self.path
        else:
            git_dir, tree = self._admin_dir(worktree), worktree
            hostgit.strip_nested_repos(worktree)
        proc = hostgit.run(git_dir, tree, *args, env=env,
                           input=stdin.encode() if stdin is not None else None, check=False)
        err = proc.stderr.decode("utf-8", "replace").strip()
        if check and proc.returncode != 0:
            raise EvoError(f"git {' '.join(args[:2])} in the genome failed: "
                           f"{err.splitlines()[-1] if err else proc.returncode}")
        return proc.stdout.decode("utf-8", "replace").strip()

    def _admin_dir(self, worktree: Path) -> Path:
        """The `.git/worktrees/<name>` directory of a linked worktree of this repository."""
        wanted = (Path(worktree).resolve() / ".git").as_posix()
        admin = self.path / ".git" / "worktrees"
        for entry in sorted(admin.iterdir()) if admin.is_dir() else []:
            gitdir = entry / "gitdir"
            if gitdir.is_file() and gitdir.read_text().strip() == wanted:
                return entry
        raise EvoError(f"{worktree} is not a worktree of the genome repository")

    # -- refs -------------------------------------------------------------------------------

    def sha(self, ref: str) -> str:
        out = self.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                       f"{ref}^{{commit}}", check=False)
        if not out:
            raise EvoError(f"no genome version {ref!r}")
        return out

    def branch_of(self, variant_id: str) -> str:
        return f"{VARIANT_PREFIX}{variant_id}"

    def ref_of(self, variant_id: str) -> str:
        """The ref a variant id names: `main` or its branch."""
        return "main" if variant_id == "main" else self.branch_of(variant_id)

    # -- variants ---------------------------------------------------------------------------

    def fork(self, variant_id: str, parent_ref: str, worktrees: Path) -> Path:
        """Branch `variants/<id>` at the parent, checked out in a fresh linked worktree."""
        parent = self.sha(parent_ref)
        where = worktrees / variant_id
        if where.exists():
            self.drop_worktree(where)
        worktrees.mkdir(parents=True, exist_ok=True)
        self.git("worktree", "prune")
        self.git("worktree", "add", "-q", "-B", self.branch_of(variant_id), str(where), parent)
        return where

    def checkout(self, ref: str, where: Path) -> Path:
        """A detached, throwaway worktree of `ref` (to check a variant without a branch)."""
        if where.exists():
            self.drop_worktree(where)
        where.parent.mkdir(parents=True, exist_ok=True)
        self.git("worktree", "add", "-q", "--detach", str(where), self.sha(ref))
        return where

    def commit_all(self, worktree: Path, message: str) -> str | None:
        """Commit everything in the worktree; the new sha, or None when nothing changed."""
        self.git("add", "-A", worktree=worktree)
        if not self.git("diff", "--cached", "--name-only", worktree=worktree):
            return None
        self.git("commit", "-q", "--no-verify", "-m", message, worktree=worktree)
        return self.git("rev-parse", "HEAD", worktree=worktree)

    def drop_worktree(self, worktree: Path) -> None:
        # Deleted by hand, then pruned: `git worktree remove` would look inside the tree.
        shutil.rmtree(worktree, ignore_errors=True)
        self.git("worktree", "prune", check=False)

    def diff(self, old: str, new: str) -> str:
        return self.git("diff", "--no-color", "--no-ext-diff", self.sha(old), self.sha(new))

    def changed_paths(self, old: str, new: str) -> list[str]:
        out = self.git("diff", "--name-only", "--no-renames", self.sha(old), self.sha(new))
        return [p for p in out.splitlines() if p]

    def show(self, ref: str, path: str) -> str | None:
        out = subprocess.run(["git", "show", f"{self.sha(ref)}:{path}"], cwd=self.path,
                             capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def tree_sha(self, ref: str, path: str) -> str:
        """The tree (or blob) id of `path` at `ref`: names a version of e.g. `meta/`."""
        return self.git("rev-parse", "--verify", "--quiet", f"{self.sha(ref)}:{path}",
                        check=False) or "none"

    def add_note(self, ref: str, text: str) -> None:
        self.git("notes", "--ref", NOTES_REF, "add", "-f", "-m", text, self.sha(ref))

    def note(self, ref: str) -> str:
        return self.git("notes", "--ref", NOTES_REF, "show", self.sha(ref), check=False)

    # -- the live genome --------------------------------------------------------------------

    def _require_clean(self) -> None:
        if self.git("status", "--porcelain"):
            raise EvoError(f"the live genome ({self.path}) has uncommitted edits; commit or "
                           "discard them first")
        current = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if current != "main":
            raise EvoError(f"the live genome ({self.path}) is not on branch main")

    def promoted_tags(self) -> list[tuple[int, str]]:
        tags = []
        for name in self.git("tag", "--list", "promoted/*").splitlines():
            found = PROMOTED_TAG.match(name)
            if found:
                tags.append((int(found.group(1)), name))
        return sorted(tags)

    def move_main(self, target_ref: str) -> str:
        """Move `main` (and the live checkout) to `target_ref`, tagging the old main
        `promoted/<n>-previous`; the tag name."""
        self._require_clean()
        target = self.sha(target_ref)
        old = self.sha("main")
        number = (self.promoted_tags()[-1][0] + 1) if self.promoted_tags() else 1
        tag = f"promoted/{number}-previous"
        self.git("tag", tag, old)
        self.git("reset", "-q", "--hard", target)
        return tag

    def rollback(self, tag: str | None = None) -> str:
        """Restore an earlier main: `tag` (a promoted/<n>-previous tag or any ref), default
        the latest promotion's previous main; the sha main now has. The main being left is
        tagged too, so a rollback can itself be undone."""
        if tag is None:
            tags = self.promoted_tags()
            if not tags:
                raise EvoError("nothing to roll back: main was never promoted")
            tag = tags[-1][1]
        self.move_main(tag)
        return self.sha("main")
