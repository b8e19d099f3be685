"""The one way host code runs git on a tree that sandboxed code could have written.

Git run on the host reads configuration, attributes, hooks and worktree settings, and several
of those name programs to run (`core.fsmonitor`, filter drivers, hooks, `diff.external`,
`core.sshCommand`, ...). New ones appear in every release, and config can `include.path` more
config, so the rule is about *where git reads from*, not a list of keys:

- the git directory is the kernel's: it lives outside the work tree and is never writable in
  the sandbox (the sandbox sees it read-only at `<tree>/.git`), and git is always told where it
  is (`--git-dir`, `--work-tree`), so a `.git` file or directory the sandbox made is ignored;
- no system or global configuration or attributes are read (`GIT_CONFIG_NOSYSTEM`,
  `GIT_CONFIG_GLOBAL=/dev/null`, `GIT_ATTR_NOSYSTEM`): the workspace's own config is all
  there is, so a `.gitattributes` in the tree can only name drivers nobody defined;
- repositories nested in the tree are removed before git looks at it: `git add` and any
  worktree diff run `git status` inside an embedded repository with *its* config, which the
  sandbox wrote. A nested repository is never part of a patch anyway;
- the settings that would run something are pinned on the command line as well, where they
  win over any file and reach every git child process (`GIT_CONFIG_PARAMETERS`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "evoagent",
    "GIT_AUTHOR_EMAIL": "evoagent@localhost",
    "GIT_COMMITTER_NAME": "evoagent",
    "GIT_COMMITTER_EMAIL": "evoagent@localhost",
}

# Defence in depth: the git directory is ours, but these are the keys that run programs or
# reach out, pinned so that no file can turn them on.
PINNED_CONFIG = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "diff.external=",
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
    "submodule.recurse=false",
    "protocol.allow=never",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "safe.directory=*",
)

# Variables of the caller's environment that would point git somewhere else.
_DROPPED_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT", "GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS",
    "GIT_EDITOR", "GIT_PAGER", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)


class GitError(RuntimeError):
    pass


def safe_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _DROPPED_ENV and not k.startswith("GIT_CONFIG_KEY_")
           and not k.startswith("GIT_CONFIG_VALUE_")}
    env.update(IDENTITY)
    env.update({
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_ALLOW_PROTOCOL": "",
        "LC_ALL": "C",
    })
    env.update(extra or {})
    return env


def argv(git_dir: Path, work_tree: Path | None, *args: str) -> list[str]:
    pinned = [item for pair in PINNED_CONFIG for item in ("-c", pair)]
    where = [f"--git-dir={git_dir}"]
    if work_tree is not None:
        where.append(f"--work-tree={work_tree}")
    return ["git", *where, *pinned, *args]


def run(
    git_dir: Path,
    work_tree: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """git `args` on `git_dir` (+ `work_tree`), locked down as the module docstring says.
    Callers strip nested repositories first (`strip_nested_repos`) when git will look at the
    work tree."""
    cwd = work_tree if work_tree is not None else git_dir
    proc = subprocess.run(argv(git_dir, work_tree, *args), cwd=cwd, env=safe_env(env),
                          input=input, capture_output=True)
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed in {cwd}: {message}")
    return proc


def output(git_dir: Path, work_tree: Path | None, *args: str,
           env: dict[str, str] | None = None) -> str:
    return run(git_dir, work_tree, *args, env=env).stdout.decode("utf-8", "replace")


def strip_nested_repos(tree: Path) -> list[str]:
    """Remove every `.git` (file, directory or link, any letter case) below the top of
    `tree`, and make the top one an empty directory (the mount point the sandbox sees its
    read-only history through). Returns the relative paths removed. Never follows links."""
    removed: list[str] = []
    top = tree / ".git"
    if top.is_symlink() or (top.exists() and not top.is_dir()):
        top.unlink()
    elif top.is_dir() and any(top.iterdir()):
        shutil.rmtree(top)
    top.mkdir(exist_ok=True)
    stack = [tree]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if current == tree and entry.name == ".git":
                continue
            if entry.name.lower() == ".git":
                removed.append(os.path.relpath(entry.path, tree))
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return removed
