"""The run pages' routes: a run's page, its bundle and patch behind sign-in, the public key, static.

Every run route asks, in this order: is someone signed in (else a redirect to sign in, and not a
byte of the run)? is the id a run id (checked before it names a path)? does the run exist, and
can this person read its repository on GitHub? A run that does not exist and a run the person
may not see get the same 404, so a page never confirms that a run exists.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from bot import logs
from bot.errors import GwiError
from bot.pages.access import AccessCache
from bot.pages.github_user import GitHubUnavailable, TokenRejected
from bot.pages.run_page import render_run_page
from bot.pages.sessions import CookieSealer
from bot.pages.signin import PAGES, PagesContext, add_signin_routes, login_redirect
from bot.runs.bundle import RunNotFound
from bot.runs.ids import check_run_id
from bot.runs.signing import (
    fingerprint,
    load_signer,
    public_key_pem,
    retired_keys,
    trusted_keys,
)
from bot.runs.store import RunStore
from bot.runs.store_factory import open_run_store
from bot.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"
KEY_PATH = "/.well-known/gwi-signing-key"
#: Pages may load what gwi serves and nothing else; no page may frame them.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
NOT_FOUND = "Not found.\n"

log = logs.get_logger("gwi.pages")


class RenderPage(Protocol):
    """`bot.pages.run_page.render_run_page`'s signature (the page itself is built there)."""

    def __call__(self, store: RunStore, run_id: str, *, trusted_keys: frozenset[str],
                 static_prefix: str = ..., anchor: tuple[int, str] | None = ...) -> str: ...


#: The latest anchor kept for a run outside its bundle (None: none recorded).
Anchors = Callable[[str], Awaitable[tuple[int, str] | None]]


class RunPages:
    """The run routes' shared parts: the store, how a page is rendered, the signing key's file."""

    def __init__(self, settings: Settings, render: RenderPage | None,
                 anchors: Anchors | None) -> None:
        self.store = open_run_store(settings)
        self.key_path = settings.signing_key_path
        self._render = render
        self.anchors = anchors

    def render(self) -> RenderPage:
        return self._render or render_run_page


RUN_PAGES = web.AppKey("run_pages", RunPages)


def add_run_pages(app: web.Application, settings: Settings, *, render: RenderPage | None = None,
                  anchors: Anchors | None = None,
                  clock: Callable[[], float] | None = None,
                  wall_clock: Callable[[], float] | None = None) -> None:
    """Add sign-in, the run routes, the public key and the static files to ``app``.

    ``render`` builds a run's HTML (default: `bot.pages.run_page.render_run_page`); ``anchors``
    answers the latest chain head gwi published for a run (kept in the queue database), which
    the page checks the bundle against; ``clock`` (monotonic) times the access answers and
    ``wall_clock`` (Unix seconds) the cookies: tests.
    """
    pages = settings.pages
    if pages is None:
        raise GwiError("run pages are off: set GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET,"
                       " GWI_PUBLIC_URL and GWI_SESSION_SECRET")
    sealer = CookieSealer(pages.session_secret.get_secret_value(), clock=wall_clock or time.time)
    access = AccessCache(pages, clock=clock or time.monotonic)
    ctx = app[PAGES] = PagesContext(pages, sealer, access)
    app[RUN_PAGES] = RunPages(settings, render, anchors)
    app.on_cleanup.append(_close_store)
    app.cleanup_ctx.append(ctx.http_session)
    app.on_response_prepare.append(_security_headers)
    add_signin_routes(app)
    app.router.add_get("/runs/{run_id}", run_page)
    app.router.add_get("/runs/{run_id}/bundle.tar.gz", run_bundle)
    app.router.add_get("/runs/{run_id}/patch.diff", run_patch)
    app.router.add_get(KEY_PATH, signing_key)
    STATIC_DIR.mkdir(exist_ok=True)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, follow_symlinks=False)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(("/runs/", "/login", "/oauth/", "/logout")):
        headers["Cache-Control"] = "no-store"


async def _readable_run(request: web.Request) -> str:
    """The run id of a request the signed-in person may see; else the answer, raised."""
    ctx: PagesContext = request.app[PAGES]
    session = ctx.session_of(request)
    if session is None:
        raise login_redirect(request)
    try:
        run_id = check_run_id(request.match_info["run_id"])
    except GwiError:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    store = request.app[RUN_PAGES].store
    try:
        context = await asyncio.to_thread(store.read_context, run_id)
    except RunNotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except GwiError as exc:  # damaged: whose repository it is cannot be trusted, so nobody's
        log.warning("pages.run_unreadable", run_id=run_id, error=str(exc)[:200])
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    full_name = context.repository.full_name
    try:
        allowed = await ctx.access.can_read(ctx.client(), user_id=session.user_id,
                                            token=session.token, full_name=full_name)
    except TokenRejected:
        ctx.access.forget_user(session.user_id)
        redirect = login_redirect(request)
        ctx.end_session(redirect)
        raise redirect from None
    except GitHubUnavailable as exc:
        log.warning("pages.access_unknown", run_id=run_id, error=str(exc)[:200])
        raise web.HTTPBadGateway(text="GitHub did not answer whether you may read this;"
                                      " try again in a moment.\n") from None
    if not allowed:
        log.info("pages.access_denied", run_id=run_id, login=session.login,
                 repository=full_name)
        raise web.HTTPNotFound(text=NOT_FOUND)
    return run_id


async def run_page(request: web.Request) -> web.Response:
    run_id = await _readable_run(request)
    run_pages = request.app[RUN_PAGES]
    render = run_pages.render()
    trusted = await asyncio.to_thread(_trusted_keys, run_pages.key_path)
    anchor = await run_pages.anchors(run_id) if run_pages.anchors else None
    try:
        html = await asyncio.to_thread(render, run_pages.store, run_id, trusted_keys=trusted,
                                       static_prefix=STATIC_PREFIX, anchor=anchor)
    except RunNotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def run_patch(request: web.Request) -> web.Response:
    run_id = await _readable_run(request)
    store = request.app[RUN_PAGES].store
    try:
        patch = await asyncio.to_thread(store.read_bytes, run_id, "patch.diff")
    except RunNotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    if patch is None:
        raise web.HTTPNotFound(text="This run has no patch (yet).\n")
    return web.Response(body=patch, content_type="text/plain", charset="utf-8")


async def run_bundle(request: web.Request) -> web.Response:
    run_id = await _readable_run(request)
    store = request.app[RUN_PAGES].store
    try:
        body = await asyncio.to_thread(bundle_archive, store, run_id)
    except RunNotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    return web.Response(body=body, content_type="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="{run_id}.tar.gz"'})


async def _close_store(app: web.Application) -> None:
    app[RUN_PAGES].store.close()  # the database's connections, when the runs are kept there


def bundle_archive(store: RunStore, run_id: str) -> bytes:
    """The run folder as stored, as ``<run id>/<file>`` entries of a tar.gz.

    Only regular files are taken (never a link out of the folder), and not the hidden
    ``.<name>.<random>.tmp`` files of a write in flight, which are not part of the bundle.
    """
    with store.materialise(run_id) as folder:
        try:
            return _archive(folder, run_id)
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id}") from None


def _archive(folder: Path, run_id: str) -> bytes:
    names = sorted(os.listdir(folder))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo(run_id)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        for name in names:
            if name.startswith("."):
                continue
            data, mtime = _read_regular(folder / name)
            if data is None:
                continue
            info = tarfile.TarInfo(f"{run_id}/{name}")
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _read_regular(path: Path) -> tuple[bytes | None, float]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # a link, or gone since the listing
        return None, 0.0
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, 0.0
        return handle.read(), info.st_mtime


def _trusted_keys(path: Path) -> frozenset[str]:
    try:
        return trusted_keys(path)
    except (GwiError, OSError):
        return frozenset()


def _key_text(path: Path) -> str | None:
    signer = load_signer(path)  # never creates a key
    if signer is None:
        return None
    public = signer.public_key_hex
    lines = ["gwi bundle signing key (Ed25519)", f"fingerprint: {fingerprint(public)}",
             f"public key (hex): {public}", "", public_key_pem(public).rstrip("\n")]
    retired = retired_keys(path)
    if retired:  # bundles signed before a rotation verify against these
        lines += ["", "retired keys, still trusted for bundles signed before a rotation (hex):"]
        lines += [f"  {key}  {fingerprint(key)}" for key in retired]
    return "\n".join(lines) + "\n"


async def signing_key(request: web.Request) -> web.Response:
    """The public key that signs bundles, in PEM, with its fingerprint, and the retired keys
    still trusted: public, no sign-in."""
    path = request.app[RUN_PAGES].key_path
    try:
        text = await asyncio.to_thread(_key_text, path)
    except (GwiError, ValueError, TypeError, OSError) as exc:
        log.error("pages.signing_key_unusable", error=str(exc)[:200])
        raise web.HTTPInternalServerError(text="The signing key cannot be read.\n") from None
    if text is None:
        raise web.HTTPNotFound(text="This gwi has no signing key yet: it makes one when it"
                                    " seals its first run (`gwi key show` tells more).\n")
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
