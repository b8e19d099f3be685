"""The `evoagent` command: one click group; each noun's commands live in their own module.

Importing this module must stay cheap: `evoagent --help` never imports litellm, lancedb
or tree-sitter. Commands import what they need inside their functions.
"""

from __future__ import annotations

import sys

import click

from ..errors import EvoError
from .output import echo

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@click.version_option(package_name="evoagent", prog_name="evoagent")
@click.option("--continue", "continue_", is_flag=True,
              help="Open the app on the last conversation (its messages and pending change).")
@click.option("--resume", is_flag=False, flag_value="", default=None, metavar="[ID]",
              help="Open the app on a saved conversation; without ID, list them.")
@click.pass_context
def cli(ctx: click.Context, continue_: bool, resume: str | None) -> None:
    """evoagent: a coding agent that remembers your repository's history.

    With no command, opens the app in this repository (chat, review, memory, runs).
    Run `evoagent mine` once in a repository, then `evoagent recall` to search what was
    done before and `evoagent locate` to see where an issue would be fixed.
    """
    if ctx.invoked_subcommand is not None:
        if continue_ or resume is not None:
            raise click.UsageError("--continue and --resume open the app: give no command")
        return
    if continue_ and resume is not None:
        raise click.UsageError("--continue and --resume cannot be used together")
    from ..state import open_repo

    if resume == "":  # `--resume` alone lists what can be resumed
        from .conversation_cmds import list_conversations

        list_conversations(open_repo())
        return
    chosen = None
    if continue_ or resume:  # looked up first: a bad id is one line, before any screen
        from .conversation_cmds import saved_conversation

        chosen = saved_conversation(open_repo(), resume).id
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        echo(ctx.get_help())  # not a terminal: the app cannot run
        return
    open_repo()  # outside a repository: one line and exit 2, before any screen
    from evoagent.tui.app import run  # imported here: `--help` stays fast

    run(resume=chosen)


def _register() -> None:
    from . import agent_cmds, memory_cmds

    for module in (memory_cmds, agent_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)
    from . import knowledge_cmds

    for command in knowledge_cmds.COMMANDS:
        cli.add_command(command)
    from . import acp_cmds, bench_cmds, evolve_cmds, mcp_cmds, task_cmds

    for module in (task_cmds, bench_cmds, evolve_cmds, acp_cmds, mcp_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code."""
    import warnings

    # LanceDB warns on every fork (each git/sandbox subprocess) once it is loaded; the
    # subprocesses exec at once, so the warning is noise on the user's terminal.
    warnings.filterwarnings("ignore", message="lancedb fork support")
    try:
        cli.main(standalone_mode=False)
    except EvoError as exc:
        echo(f"evoagent: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        echo("evoagent: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        echo(f"evoagent: {exc.format_message()}", err=True)
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except Exception as exc:
        # Memory-layer failures a user can fix (bad revision, unreadable store) carry a
        # one-line message; anything else is a bug and keeps its traceback.
        one_line = getattr(exc, "one_line", None)
        if one_line is None:
            raise
        echo(f"evoagent: {one_line()}", err=True)
        sys.exit(2)
