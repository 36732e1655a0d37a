"""`gwi`: the command line. Each area of the package registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
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
    "bot.cli.admin_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gwi",
        description="gwi: resolve pull-request merge conflicts, push only what was approved.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
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
