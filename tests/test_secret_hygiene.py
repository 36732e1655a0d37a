"""No secret in anything gwi writes, across a full run with an LLM, an approval and a push.

Gathered: every log line at debug level (gwi's and its libraries'), every request body sent to
GitHub (comments, check-run texts, reactions), every file under the data dir (bundles, audit
logs, the repository cache) and every value in the queue database, delivery bodies inflated.
Looked for: the webhook secret, the App's private key (whole, and each line of it), every
installation token GitHub minted (and its git Basic-auth form), every App JWT, the LLM key.
The run goes through the paths most likely to leak: an installation token that GitHub starts
refusing mid-run, and an LLM that answers 401 quoting the key back.
"""

from __future__ import annotations

import base64
import io
import logging
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.logs import configure_logging
from bot.queue.schema import DB_FILENAME
from bot.schemas.state import Outcome, RunState
from tests.conftest import WEBHOOK_SECRET, app_key_pem
from tests.fake_llm import FAKE_LLM_KEY, Status, json_text

BASE = {"settings.py": "import os\n\nLIMIT = 10\nNAME = 'app'\n", "README.md": "hello\n"}


@contextmanager
def debug_log() -> Iterator[io.StringIO]:
    """Every log line, formatted as `gwi serve` writes them, at debug level."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def database_text(path: Path) -> bytes:
    """Every value of every table, with the stored (deflated) delivery bodies inflated."""
    out = io.BytesIO()
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            value = zlib.decompress(value)
                        except zlib.error:
                            pass
                        out.write(value)
                    else:
                        out.write(str(value).encode())
                    out.write(b"\n")
    return out.getvalue()


def written(bot: Any, log: str, data_dir: Path) -> dict[str, bytes]:
    """What gwi wrote, by where it went."""
    places: dict[str, bytes] = {"log": log.encode()}
    for call in bot.fake.calls:
        if call.json is not None:
            places[f"GitHub {call.method} {call.path} #{id(call)}"] = str(call.json).encode()
    for comment in bot.fake.comments.values():
        places[f"comment {comment.id}"] = "\n".join([comment.body, *comment.history]).encode()
    for check in bot.fake.check_runs.values():
        places[f"check-run {check.id}"] = str([check.output, *check.history]).encode()
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            places[str(path.relative_to(data_dir))] = path.read_bytes()
    places["queue database rows"] = database_text(data_dir / DB_FILENAME)
    return places


def secrets_of(bot: Any) -> dict[str, str]:
    pem = app_key_pem()
    found = {"webhook secret": WEBHOOK_SECRET, "App private key": pem.strip(),
             "LLM key": FAKE_LLM_KEY}
    for n, line in enumerate(pem.strip().splitlines()[1:-1]):
        found[f"private key line {n}"] = line
    for n, token in enumerate(bot.fake.tokens):
        found[f"installation token {n}"] = token.token
        basic = base64.b64encode(f"x-access-token:{token.token}".encode()).decode()
        found[f"installation token {n} as git Basic auth"] = basic
    jwts = {c.headers.get("Authorization", "").removeprefix("Bearer ") for c in bot.fake.calls
            if c.headers.get("Authorization", "").count(".") == 2}
    for n, jwt in enumerate(sorted(jwts)):
        found[f"App JWT {n}"] = jwt
    return found


async def test_no_secret_reaches_logs_comments_checks_bundles_or_the_database(
    make_bot: Callable[..., Any], fake_llm: Any, llm_settings_for: Callable[..., Any],
    tmp_path: Path,
) -> None:
    with debug_log() as log:
        fake_llm.add(json_text({"value": 0, "reasons": []}),
                     json_text({"regions": [{"region": 0, "resolution": "LIMIT = 30\n",
                                             "explanation": "main's limit", "confidence": 90}]}))
        bot = await make_bot(BASE, llm=llm_settings_for("openai"))
        fake = bot.fake
        bot.remote.commit("feature", {"settings.py": "import os\n\nLIMIT = 20\nNAME = 'app'\n"},
                          "feature", new_branch=True)
        bot.remote.commit("second", {"settings.py": "import os\n\nLIMIT = 25\nNAME = 'app'\n"},
                          "second", new_branch=True)
        bot.remote.commit("main", {"settings.py": "import os\n\nLIMIT = 30\nNAME = 'app'\n"},
                          "main")
        bot.open_pull(7, "feature")
        bot.open_pull(8, "second")
        fake.set_collaborator(bot.repo, "maya", "maintain")

        await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
        [view] = bot.views()
        assert view.ctx.state is RunState.AWAITING_APPROVAL
        fake.expire_tokens()  # GitHub starts refusing the token gwi holds: 401, then a new one
        await bot.deliver("issue_comment", bot.comment_payload(7, f"/gwi approve"
                                                                  f" {view.patch_hash}"))
        [view] = bot.views()
        assert view.ctx.outcome is Outcome.APPLIED
        assert fake.auth_failures

        # The LLM refuses the key and quotes it back, as some APIs do.
        fake_llm.add(Status(401, f"Incorrect API key provided: {FAKE_LLM_KEY}.",
                            retry_after_ms=None))
        await bot.deliver("pull_request", bot.pull_payload(8, "opened"))
        failed = next(v for v in bot.views() if v.ctx.pull_request
                      and v.ctx.pull_request.number == 8)
        assert failed.ctx.state is RunState.FAILED and "401" in (failed.ctx.error or "")
        await bot.client.close()  # the queue database is closed and checkpointed

    places = written(bot, log.getvalue(), tmp_path / "data")
    assert "msg=apply.pushed" in log.getvalue() and "level=debug" in log.getvalue()
    assert any(name.startswith("runs/") for name in places)
    assert len(fake.tokens) >= 3  # the run's, its replacement after the 401, the push's
    leaks = [(secret, place) for secret, value in secrets_of(bot).items()
             for place, text in places.items() if value.encode() in text]
    assert leaks == []
