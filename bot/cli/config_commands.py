"""`gwi config check`: validate the environment's settings and a `.github/gwi.yml` file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="check gwi's settings")
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    p = config_sub.add_parser(
        "check", help="validate the environment (and a .github/gwi.yml); non-zero on errors")
    p.add_argument("--repo-config", type=Path, default=None, metavar="FILE",
                   help="a .github/gwi.yml to validate too")
    p.add_argument("--serve", action="store_true",
                   help="also require what `gwi serve` needs (webhook secret, App credentials)")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from bot.errors import GwiError
    from bot.github.repo_config import RepoConfigError, parse_repo_config
    from bot.settings import load_settings

    problems: list[str] = []
    settings = None
    try:
        settings = load_settings()
    except GwiError as exc:
        problems.append(f"environment: {exc}")
    if settings is not None:
        print(f"data folder: {settings.data_dir}")
        print(f"signing key: {settings.signing_key_path}")
        url = settings.server.database_url
        if url is None:
            print("queue: SQLite in the data folder")
        else:
            from bot.queue.pg_runner import redact

            print(f"queue: PostgreSQL at {redact(url.get_secret_value())}")
        print(f"LLM: {settings.llm.provider.value}"
              + (f" ({settings.llm.model})" if settings.llm.model else ""))
        print(f"GitHub App: {'app ' + settings.github.app_id if settings.github else 'not set'}")
        pages = settings.pages
        print(f"run pages: {'at ' + pages.public_url + '/runs/' if pages else 'off'}")
        if args.serve:
            for check in (settings.server.webhook_secrets, settings.require_github):
                try:
                    check()
                except GwiError as exc:
                    problems.append(f"gwi serve: {exc}")
    if args.repo_config is not None:
        try:
            text = args.repo_config.read_bytes()
        except OSError as exc:
            problems.append(f"{args.repo_config}: cannot read it: {exc.strerror or exc}")
        else:
            try:
                parse_repo_config(text)
            except RepoConfigError as exc:
                problems.append(f"{args.repo_config}: {exc}")
            else:
                print(f"{args.repo_config}: valid")
    for problem in problems:
        print(f"gwi: error: {problem}")
    if problems:
        return 2
    print("configuration OK")
    return 0
