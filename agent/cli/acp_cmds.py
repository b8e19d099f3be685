"""`evoagent acp`: serve the Agent Client Protocol on stdio for an editor (agent/acp_server.py)."""

from __future__ import annotations

import click

MODES = click.Choice(["ask", "auto_edits", "full_auto", "read_only"])
"""agent/approval.py's ApprovalMode values (not imported: `evoagent --help` stays cheap), and
acp_server's read-only mode (every prompt an /ask turn)."""


@click.command()
@click.option("--model", "-m", metavar="MODEL",
              help="Any litellm model name (default: the repository's configured model).")
@click.option("--mode", type=MODES, default="ask", show_default=True,
              help="Mode of new sessions (an approval mode, or read_only: every prompt is "
                   "an /ask turn); the client can switch it per session.")
def acp(model: str | None, mode: str) -> None:
    """Serve the Agent Client Protocol on stdin/stdout, for editors such as Zed.

    Each ACP session is a conversation in its working directory's repository: changes are
    made and tested in a sandbox and shown as diffs; /accept applies one to your files
    (through the editor when it offers its file system, else with git apply). See
    docs/acp.md.
    """
    from ..acp_stdio import serve

    serve(model, mode)


COMMANDS = [acp]
