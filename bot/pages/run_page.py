"""The run page as HTML: `render_run_page` fills the Jinja2 template (autoescaped: every name,
message, reason and patch line from a run is text, never markup) with what `bot.pages.content`
gathered. No JavaScript; the stylesheets are served from ``bot/pages/static/``."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.pages.content import gather

if TYPE_CHECKING:
    from bot.runs.store import RunStore

TEMPLATE = "run_page.html"
#: The stylesheets the page links, in bot/pages/static/.
STYLESHEETS = ("run-page.css", "diff.css")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: str | None) -> str:
    return (value or "")[:12]


@cache
def environment() -> Environment:
    """The one template environment: autoescaping on for every template, undefined names an
    error (a typo in the template fails the tests instead of showing nothing)."""
    env = Environment(
        loader=PackageLoader("bot.pages", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["short"] = _short
    return env


def render_run_page(store: RunStore, run_id: str, *, trusted_keys: frozenset[str],
                    static_prefix: str = "/static",
                    anchor: tuple[int, str] | None = None) -> str:
    """The whole page of one run; raises `bot.runs.bundle.RunNotFound` for an unknown run.

    ``trusted_keys`` are the hex Ed25519 public keys the "verified right now" check trusts;
    ``anchor`` is an externally recorded (seq, hash) of the log, shown as matched or not.
    Reads the run's folder and writes nothing.
    """
    page = gather(store, run_id, trusted_keys=trusted_keys, anchor=anchor)
    prefix = static_prefix.rstrip("/")
    return environment().get_template(TEMPLATE).render(
        page=page, stylesheets=[f"{prefix}/{name}" for name in STYLESHEETS])
