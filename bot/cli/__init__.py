"""`gwi`: the command line. Each area of the package registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from bot.errors import GwiError

# Each module exports ``register(subparsers)``, which adds its subcommands and sets
# ``func`` (taking the parsed namespace, returning an exit code) on each. Modules keep
# heavy imports inside their command functions: git calls `gwi merge-driver` once per file.
COMMAND_MODULES: tuple[str, ...] = (
    "bot.cli.runs_commands",
    "bot.cli.triage_commands",
    "bot.cli.merge_commands",
    "bot.cli.local_commands",
    "bot.cli.serve_commands",
    "bot.cli.config_commands",
    "bot.cli.admin_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gwi",
        description="gwi: resolve pull-request merge conflicts, push only what was approved.",
    )
    parser.add_argument("--version", action="version", version=f"gwi {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("gwi")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


#: What a command exits with when its reader went away (`gwi runs list | head -1`): the
#: shell's code for a process killed by SIGPIPE, as other Unix tools exit.
BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE


def _quiet_broken_pipe() -> int:
    # Python would report the failed flush of stdout at exit too: point it at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except GwiError as exc:
        print(f"gwi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gwi: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug exits 2 like any error (1 means "conflicts" to git)
        traceback.print_exc()
        print(f"gwi: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return code
