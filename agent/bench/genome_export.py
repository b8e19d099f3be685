"""A genome at a ref of `.evoagent/agent` (the genome's own git repository), as files.

The benchmark scores exactly the committed genome at a ref — `main` for the live agent,
`variants/<id>` for a candidate — never the working copy someone may be editing, so a run
records what it measured. The tar bytes are also how a genome travels to a Ray worker.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from ..errors import EvoError


def genome_sha(genome_repo: Path, ref: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(genome_repo), "rev-parse", "--verify", "--quiet",
         "--end-of-options", f"{ref}^{{commit}}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EvoError(f"no genome version {ref!r} in {genome_repo} (see `git -C {genome_repo} branch -a`)")
    return proc.stdout.strip()


def genome_tar(genome_repo: Path, ref: str) -> bytes:
    sha = genome_sha(genome_repo, ref)
    proc = subprocess.run(["git", "-C", str(genome_repo), "archive", "--format=tar", sha],
                          capture_output=True)
    if proc.returncode != 0:
        raise EvoError(f"cannot export genome {ref}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def extract_tar(data: bytes, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(dest, filter="data")
    return dest


def export_genome(genome_repo: Path, ref: str, dest: Path) -> Path:
    """Write the genome at `ref` to `dest`; the directory."""
    return extract_tar(genome_tar(genome_repo, ref), dest)
