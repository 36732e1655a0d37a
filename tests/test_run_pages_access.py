"""Run pages behind GitHub sign-in, attacked: each story through a real aiohttp server and the one
fake GitHub (its OAuth web flow, GET /user, and who can see which repository).

The page body comes from a small stand-in renderer (the run id and a marker); what a page shows
is tested with the page itself.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from cryptography.hazmat.primitives import serialization
from yarl import URL

from bot.pages.signin import safe_next
from bot.runs.folder_store import FolderRunStore
from bot.runs.signing import rotate
from bot.runs.store_factory import open_run_store
from bot.runs.verify import verify_bundle
from bot.schemas.common import sha256_hex
from bot.schemas.review import ReviewResult
from bot.schemas.state import Outcome, RunState
from bot.server.app import create_app
from bot.settings import load_settings
from tests import builders as b
from tests.conftest import GITHUB_INSTALLATION_ID, WEBHOOK_SECRET

MARKER = "RUN-PAGE-MARKER"
ALPHA, BETA = "acme/alpha", "acme/beta"
SESSION_SECRET = "k3J9x-session-secret-for-tests-0123456789"
OUTSIDE = b"SECRET-OUTSIDE-THE-RUNS-FOLDER"


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    client: Any
    fake: Any
    store: FolderRunStore
    data_dir: Path
    runs: dict[str, str]
    rendered: list[str]
    clock: Clock
    wall: Clock
    public_url: str
    extra_clients: list[Any] = field(default_factory=list)

    async def sign_in(self, login: str, next_path: str = "", client: Any = None) -> Any:
        """The whole web flow in ``client``'s browser; returns the callback's answer."""
        client = client or self.client
        self.fake.sign_in_as(login)
        query = {"next": next_path} if next_path else {}
        start = await client.get("/login", params=query, allow_redirects=False)
        assert start.status == 302, await start.text()
        back = await self.at_github(start.headers["Location"])
        return await client.get(self.local(back), allow_redirects=False)

    async def at_github(self, authorize_url: str) -> str:
        """The browser at GitHub's authorize page: where GitHub sends it back."""
        async with aiohttp.ClientSession() as browser, browser.get(
                authorize_url, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            return answer.headers["Location"]

    def local(self, url: str) -> str:
        assert url.startswith(self.public_url), url
        return url[len(self.public_url):]


def _render(rendered: list[str]) -> Callable[..., str]:
    def render(store: FolderRunStore, run_id: str, *, trusted_keys: frozenset[str],
               static_prefix: str = "/static", anchor: tuple[int, str] | None = None) -> str:
        rendered.append(run_id)
        store.read_context(run_id)
        return f"<p>{run_id} {MARKER} keys={sorted(trusted_keys)}</p>"
    return render


def _finished_run(store: FolderRunStore, full_name: str) -> str:
    owner, name = full_name.split("/")
    run_id = store.create(b.context_fields(
        repository={"owner": owner, "name": name, "full_name": full_name}))
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.write_artifact("plan.md", "# Plan\nkeep both\n")
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        patch = b.PATCH + f"+{full_name}\n".encode()
        run.write_artifact("patch.diff", patch)
        run.transition(RunState.REVIEW, reason="resolved")
        review = b.review(run_id=run_id, patch_sha256=sha256_hex(patch))
        run.write_artifact("review.json", ReviewResult.model_validate(review))
        run.transition(RunState.DONE, reason="human", outcome=Outcome.NEEDS_HUMAN)
    return run_id


@pytest.fixture
def make_world(aiohttp_server: Any, aiohttp_client: Any, fake_github: Any,
               tmp_path: Path) -> Callable[..., Any]:
    async def make(*, runs: bool = True, real_page: bool = False, **env: str) -> World:
        port = unused_port()
        public_url = f"http://127.0.0.1:{port}"
        data_dir = tmp_path / "data"
        values = {"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "GWI_DATA_DIR": str(data_dir),
                  "GWI_SIGNING_KEY": str(tmp_path / "keys" / "signing-key.pem"),
                  "GITHUB_CLIENT_ID": fake_github.oauth_client_id,
                  "GITHUB_CLIENT_SECRET": fake_github.oauth_client_secret,
                  "GWI_PUBLIC_URL": public_url, "GWI_SESSION_SECRET": SESSION_SECRET,
                  "GWI_COOKIE_SECURE": "false", "GITHUB_WEB_URL": fake_github.base_url,
                  "GITHUB_API_URL": fake_github.base_url, **env}
        settings = load_settings(values)
        fake_github.set_oauth_client(f"{public_url}/oauth/callback")
        for repo, reader in ((ALPHA, "alice"), (BETA, "bob")):
            fake_github.add_repo(repo, installation_id=GITHUB_INSTALLATION_ID, private=True)
            fake_github.set_collaborator(repo, reader, "read")
        store = open_run_store(settings)
        ids = {ALPHA: _finished_run(store, ALPHA), BETA: _finished_run(store, BETA)} if runs else {}
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "outside.txt").write_bytes(OUTSIDE)
        rendered: list[str] = []
        clock, wall = Clock(1000.0), Clock(1_800_000_000.0)
        options: dict[str, Any] = {"clock": clock, "wall_clock": wall}
        if not real_page:
            options["render"] = _render(rendered)
        app = create_app(settings, run_workers=False, page_options=options)
        server = await aiohttp_server(app, port=port)
        client = await aiohttp_client(server)
        return World(client, fake_github, store, data_dir, ids, rendered, clock, wall, public_url)

    return make


def _repo_checks(fake: Any) -> list[Any]:
    return fake.calls_to("repos/get")


# -- unauthenticated -----------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", "/bundle.tar.gz", "/patch.diff"])
async def test_unauthenticated_gets_a_redirect_and_no_byte_of_the_run(
        make_world: Callable[..., Any], suffix: str) -> None:
    world = await make_world()
    path = f"/runs/{world.runs[ALPHA]}{suffix}"
    answer = await world.client.get(path, allow_redirects=False)
    body = await answer.read()
    assert answer.status == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/login" and parse_qs(target.query) == {"next": [path]}
    assert MARKER.encode() not in body and b"+acme/alpha" not in body and b"\x1f\x8b" not in body
    assert world.rendered == [] and _repo_checks(world.fake) == []


# -- the web flow --------------------------------------------------------------------------

async def test_sign_in_uses_state_and_pkce_then_shows_the_run(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    run_id = world.runs[ALPHA]
    world.fake.sign_in_as("alice")
    start = await world.client.get("/login", params={"next": f"/runs/{run_id}"},
                                   allow_redirects=False)
    target = urlsplit(start.headers["Location"])
    asked = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{world.fake.base_url}/login/oauth/authorize")
    assert asked["client_id"] == world.fake.oauth_client_id
    assert asked["redirect_uri"] == f"{world.public_url}/oauth/callback"
    assert asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 32
    back = await world.at_github(start.headers["Location"])
    done = await world.client.get(world.local(back), allow_redirects=False)
    assert done.status == 302 and done.headers["Location"] == f"/runs/{run_id}"

    (exchange,) = world.fake.calls_to("oauth/access-token")
    assert exchange.headers["accept"] == "application/json"
    verifier = exchange.json["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.decode().rstrip("=") == asked["code_challenge"]
    assert exchange.json["redirect_uri"] == asked["redirect_uri"]
    (who,) = world.fake.calls_to("users/get-authenticated")
    assert who.headers["authorization"].startswith("Bearer ghu_")

    page = await world.client.get(f"/runs/{run_id}")
    assert page.status == 200 and MARKER in await page.text()
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    (check,) = _repo_checks(world.fake)
    assert check.path == f"/repos/{ALPHA}" and check.headers["authorization"].startswith("Bearer ghu_")


async def test_a_forged_state_starts_no_session(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    world.fake.sign_in_as("alice")
    start = await world.client.get("/login", allow_redirects=False)
    back = urlsplit(await world.at_github(start.headers["Location"]))
    code = parse_qs(back.query)["code"][0]
    forged = await world.client.get("/oauth/callback", params={"code": code, "state": "x" * 43},
                                    allow_redirects=False)
    assert forged.status == 400 and "state" in await forged.text()
    assert world.fake.calls_to("oauth/access-token") == []
    answer = await world.client.get(f"/runs/{world.runs[ALPHA]}", allow_redirects=False)
    assert answer.status == 302


async def test_a_callback_from_another_browser_is_refused(
        make_world: Callable[..., Any], aiohttp_client: Any) -> None:
    """Login CSRF: an attacker's own code and state, delivered to a victim's browser."""
    world = await make_world()
    world.fake.sign_in_as("mallory")
    start = await world.client.get("/login", allow_redirects=False)
    back = await world.at_github(start.headers["Location"])
    victim = await aiohttp_client(world.client.server)
    answer = await victim.get(world.local(back), allow_redirects=False)
    assert answer.status == 400 and "another browser" in await answer.text()
    assert not [c for c in victim.session.cookie_jar if c.key == "gwi-session"]


async def test_a_replayed_code_is_refused_by_github(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    world.fake.sign_in_as("alice")
    start = await world.client.get("/login", allow_redirects=False)
    state_cookie = next(c.value for c in world.client.session.cookie_jar if c.key == "gwi-signin")
    back = world.local(await world.at_github(start.headers["Location"]))
    first = await world.client.get(back, allow_redirects=False)
    assert first.status == 200 and "Signed in to gwi as alice" in await first.text()
    # The attacker replays the same callback, with the browser's state cookie put back.
    replayer = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    world.extra_clients.append(replayer)
    try:
        replayer.cookie_jar.update_cookies({"gwi-signin": state_cookie},
                                           URL(world.public_url))
        again = await replayer.get(world.public_url + back, allow_redirects=False)
        assert again.status == 400 and "bad_verification_code" in await again.text()
        assert not [c for c in replayer.cookie_jar if c.key == "gwi-session"]
    finally:
        await replayer.close()
    answers = [c.status for c in world.fake.calls_to("oauth/access-token")]
    assert answers == [200, 200]  # GitHub's errors come with a 200 and an "error" member


async def test_github_sign_in_cancelled(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    world.fake.oauth_deny = True
    answer = await world.sign_in("alice")
    assert answer.status == 403 and "access_denied" in await answer.text()
    assert world.fake.calls_to("oauth/access-token") == []


# -- the session cookie ----------------------------------------------------------------------

def _session_cookie(client: Any) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "gwi-session")


async def _with_cookie(world: World, aiohttp_client: Any, value: str, name: str = "gwi-session",
                       ) -> Any:
    other = await aiohttp_client(world.client.server)
    other.session.cookie_jar.update_cookies({name: value}, URL(world.public_url))
    return await other.get(f"/runs/{world.runs[ALPHA]}", allow_redirects=False)


async def test_tampered_or_foreign_cookies_are_signed_out(
        make_world: Callable[..., Any], aiohttp_client: Any) -> None:
    world = await make_world()
    await world.sign_in("alice")
    good = _session_cookie(world.client)
    assert (await _with_cookie(world, aiohttp_client, good)).status == 200
    raw = bytearray(base64.urlsafe_b64decode(good))
    raw[40] ^= 0x01  # a bit of the ciphertext
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode()
    from bot.pages.sessions import CookieSealer, Session
    other_key = CookieSealer("another-secret-that-is-long-enough-0123456789",
                             clock=world.wall).seal_session(Session(1, "alice", "ghu_x", 2**40))
    state_as_session = CookieSealer(SESSION_SECRET, clock=world.wall)
    from bot.pages.sessions import SignInState
    swapped = state_as_session.seal_state(SignInState("s", "v", "/"))
    for value in (flipped, good[:-4], other_key, swapped, "not-a-cookie", good + "A"):
        answer = await _with_cookie(world, aiohttp_client, value)
        assert answer.status == 302, value
        assert MARKER not in await answer.text()
    assert world.rendered == [world.runs[ALPHA]]


async def test_an_expired_session_is_signed_out(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    await world.sign_in("alice")
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 200
    world.wall.now += 8 * 3600 + 1
    answer = await world.client.get(f"/runs/{world.runs[ALPHA]}", allow_redirects=False)
    assert answer.status == 302


async def test_cookies_are_httponly_lax_and_secure_by_default(
        make_world: Callable[..., Any]) -> None:
    world = await make_world(GWI_COOKIE_SECURE="true")
    start = await world.client.get("/login", allow_redirects=False)
    (state,) = start.headers.getall("Set-Cookie")
    assert state.startswith("__Host-gwi-signin=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=600"):
        assert attribute in state
    world.fake.sign_in_as("alice")
    back = world.local(await world.at_github(start.headers["Location"]))
    value = start.cookies["__Host-gwi-signin"].value
    done = await world.client.get(back, allow_redirects=False,
                                  cookies={"__Host-gwi-signin": value})
    session = next(h for h in done.headers.getall("Set-Cookie")
                   if h.startswith("__Host-gwi-session="))
    cleared = next(h for h in done.headers.getall("Set-Cookie")
                   if h.startswith("__Host-gwi-signin="))
    assert "Max-Age=0" in cleared and "Secure" in cleared  # else the browser keeps it
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=28800"):
        assert attribute in session
    assert "ghu_" not in session  # the token travels encrypted


async def test_logout_ends_the_session(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    await world.sign_in("alice")
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 200
    assert (await world.client.get("/logout", allow_redirects=False)).status == 405
    out = await world.client.post("/logout")
    assert out.status == 200 and "Signed out" in await out.text()
    answer = await world.client.get(f"/runs/{world.runs[ALPHA]}", allow_redirects=False)
    assert answer.status == 302
    (revoke,) = world.fake.calls_to("apps/delete-token")
    assert revoke.status == 204


async def test_a_copy_of_the_cookie_is_worthless_after_logout(
        make_world: Callable[..., Any], aiohttp_client: Any) -> None:
    world = await make_world()
    await world.sign_in("alice")
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 200
    copy = _session_cookie(world.client)
    await world.client.post("/logout")
    answer = await _with_cookie(world, aiohttp_client, copy)
    assert answer.status == 302 and MARKER not in await answer.text()


# -- which runs -------------------------------------------------------------------------------

TRAVERSALS = [
    "/runs/..%2Foutside.txt",
    "/runs/%2e%2e%2foutside.txt",
    "/runs/%2E%2E/outside.txt",
    "/runs/..%5Coutside.txt",
    "/runs/../outside.txt",
    "/runs/%2e%2e%2f%2e%2e%2fkeys%2fsigning-key.pem",
    "/runs/{alpha}%2F..%2F..%2Foutside.txt",
    "/runs/{alpha}%2F..%2F{beta}",
    "/runs/{alpha}%00",
    "/runs/{alpha}%2F..%2F..%2Foutside.txt/patch.diff",
    "/runs/..%2F..%2Fkeys%2Fsigning-key.pem/bundle.tar.gz",
]


@pytest.mark.parametrize("template", TRAVERSALS)
async def test_run_ids_that_leave_the_runs_folder_read_nothing(
        make_world: Callable[..., Any], template: str) -> None:
    world = await make_world()
    await world.sign_in("alice")
    path = template.format(alpha=world.runs[ALPHA], beta=world.runs[BETA])
    answer = await world.client.get(URL(path, encoded=True), allow_redirects=False)
    body = await answer.read()
    assert answer.status == 404, (path, answer.status)
    assert OUTSIDE not in body and b"PRIVATE KEY" not in body and MARKER.encode() not in body
    assert world.rendered == [] and _repo_checks(world.fake) == []


async def test_another_repositorys_run_is_not_found(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    await world.sign_in("alice")
    unknown = "20260101T000000Z-abcdefghijklmnopqrst"
    missing = await world.client.get(f"/runs/{unknown}")
    for suffix in ("", "/bundle.tar.gz", "/patch.diff"):
        answer = await world.client.get(f"/runs/{world.runs[BETA]}{suffix}")
        assert answer.status == 404  # never 403: the run's existence is not confirmed
        assert await answer.read() == await missing.read()
    assert world.rendered == []
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 200


async def test_access_removed_is_denied_within_the_cache_time(
        make_world: Callable[..., Any]) -> None:
    world = await make_world(GWI_ACCESS_CACHE_SECONDS="5")
    await world.sign_in("alice")
    page = f"/runs/{world.runs[ALPHA]}"
    assert (await world.client.get(page)).status == 200
    world.fake.revoke_access(ALPHA, "alice")
    world.clock.now += 4  # the cached answer still holds...
    assert (await world.client.get(page)).status == 200
    world.clock.now += 1.5  # ... and no longer
    assert (await world.client.get(page)).status == 404
    assert len(_repo_checks(world.fake)) == 2


async def test_a_token_github_revoked_signs_the_person_out(
        make_world: Callable[..., Any]) -> None:
    world = await make_world(GWI_ACCESS_CACHE_SECONDS="0")
    await world.sign_in("alice")
    world.fake.expire_tokens()
    answer = await world.client.get(f"/runs/{world.runs[ALPHA]}", allow_redirects=False)
    assert answer.status == 302 and answer.headers["Location"].startswith("/login?next=")
    assert not [c for c in world.client.session.cookie_jar
                if c.key == "gwi-session" and c.value]


async def test_github_failing_is_a_502_and_never_remembered(
        make_world: Callable[..., Any]) -> None:
    world = await make_world()
    await world.sign_in("alice")
    world.fake.fault("repos/get", status=502)
    failed = await world.client.get(f"/runs/{world.runs[ALPHA]}")
    assert failed.status == 502 and MARKER not in await failed.text()
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 200
    assert [c.status for c in _repo_checks(world.fake)] == [502, 200]


async def test_a_wrong_client_secret_starts_no_session(make_world: Callable[..., Any]) -> None:
    world = await make_world(GITHUB_CLIENT_SECRET="not-the-client-secret")
    answer = await world.sign_in("alice", "/runs/x")
    assert answer.status == 400 and "incorrect_client_credentials" in await answer.text()
    assert world.fake.calls_to("users/get-authenticated") == []


# -- next -------------------------------------------------------------------------------------

@pytest.mark.parametrize("next_path", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
    "http:/evil.example", "javascript:alert(1)", "/\tevil", "/x\r\nSet-Cookie: a=b",
    "evil.example", " /runs",
])
async def test_next_never_leaves_the_site(make_world: Callable[..., Any], next_path: str) -> None:
    world = await make_world()
    answer = await world.sign_in("alice", next_path)
    assert answer.status == 200 and "Location" not in answer.headers
    assert safe_next(next_path) == ""


async def test_next_brings_the_person_back(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    answer = await world.sign_in("alice", f"/runs/{world.runs[ALPHA]}/patch.diff?x=1")
    assert answer.headers["Location"] == f"/runs/{world.runs[ALPHA]}/patch.diff?x=1"


# -- the downloads ----------------------------------------------------------------------------

async def test_the_bundle_unpacks_to_the_stored_files_and_verifies(
        make_world: Callable[..., Any], tmp_path: Path) -> None:
    world = await make_world()
    await world.sign_in("alice")
    run_id = world.runs[ALPHA]
    answer = await world.client.get(f"/runs/{run_id}/bundle.tar.gz")
    assert answer.status == 200 and answer.content_type == "application/gzip"
    assert answer.headers["Cache-Control"] == "no-store"
    with tarfile.open(fileobj=io.BytesIO(await answer.read()), mode="r:gz") as tar:
        tar.extractall(tmp_path / "download", filter="data")
    unpacked = tmp_path / "download" / run_id
    stored = world.store.run_dir(run_id)
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(p.name for p in stored.iterdir())
    for path in stored.iterdir():
        assert (unpacked / path.name).read_bytes() == path.read_bytes()
    report = verify_bundle(unpacked, trusted_keys={world.store.signer.public_key_hex})
    assert report.ok, report.problems

    patch = await world.client.get(f"/runs/{run_id}/patch.diff")
    assert patch.content_type == "text/plain"
    assert await patch.read() == (stored / "patch.diff").read_bytes()


async def test_the_signing_key_is_public_and_never_created(
        make_world: Callable[..., Any], tmp_path: Path) -> None:
    world = await make_world(runs=False)
    key_file = tmp_path / "keys" / "signing-key.pem"
    missing = await world.client.get("/.well-known/gwi-signing-key")
    assert missing.status == 404 and "no signing key" in await missing.text()
    assert not key_file.exists()

    signer = FolderRunStore(world.data_dir, key_file).signer  # the first run would make it
    answer = await world.client.get("/.well-known/gwi-signing-key")  # no sign-in needed
    text = await answer.text()
    assert answer.status == 200 and answer.content_type == "text/plain"
    public = serialization.load_pem_public_key(text[text.index("-----BEGIN"):].encode())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == signer.public_key_hex
    assert f"fingerprint: SHA256:{hashlib.sha256(raw).hexdigest()}" in text
    assert "PRIVATE" not in text
    old = signer.public_key_hex
    rotate(key_file)  # the retired key stays listed: old bundles verify against it
    text = await (await world.client.get("/.well-known/gwi-signing-key")).text()
    assert old in text.split("retired keys")[1] and old not in text.split("retired keys")[0]


async def test_pages_are_off_without_their_settings(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                              "GWI_DATA_DIR": str(tmp_path / "data")})
    client = await aiohttp_client(create_app(settings, run_workers=False))
    for path in ("/login", "/runs/20260101T000000Z-abcdefghijklmnopqrst",
                 "/.well-known/gwi-signing-key"):
        assert (await client.get(path, allow_redirects=False)).status == 404


async def test_a_private_repository_the_app_is_not_installed_on_is_not_found(
        make_world: Callable[..., Any]) -> None:
    world = await make_world()
    world.fake.repo(ALPHA).installation_id = None  # the App was removed from the repository
    await world.sign_in("alice")
    assert (await world.client.get(f"/runs/{world.runs[ALPHA]}")).status == 404


async def test_static_files_stay_in_their_folder(make_world: Callable[..., Any]) -> None:
    world = await make_world()
    for path in ("/static/..%2Fsessions.py", "/static/%2e%2e/sessions.py",
                 "/static/../sessions.py", "/static/..%2F..%2F..%2Fpyproject.toml"):
        answer = await world.client.get(URL(path, encoded=True))
        assert answer.status in (403, 404), path
        assert b"Fernet" not in await answer.read()


async def test_the_fake_github_shows_its_consent_page_to_a_browser(
        make_world: Callable[..., Any]) -> None:
    """Without a chosen person, GitHub's authorize page asks; a click signs that person in."""
    world = await make_world()
    world.fake.oauth_users[:] = ["alice", "bob"]
    start = await world.client.get("/login", params={"next": f"/runs/{world.runs[BETA]}"},
                                   allow_redirects=False)
    async with aiohttp.ClientSession() as browser:
        async with browser.get(start.headers["Location"]) as page:
            html = await page.text()
        assert page.status == 200 and "Authorize as bob" in html
        form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html.split("</form>")[1]))
        async with browser.post(f"{world.fake.base_url}/login/oauth/authorize", data=form,
                                allow_redirects=False) as click:
            back = click.headers["Location"]
    done = await world.client.get(world.local(back.replace("&amp;", "&")),
                                  allow_redirects=False)
    assert done.headers["Location"] == f"/runs/{world.runs[BETA]}"
    assert MARKER in await (await world.client.get(done.headers["Location"])).text()


async def test_the_real_page_is_served(make_world: Callable[..., Any]) -> None:
    """Without ``render``, the web process serves `bot.pages.run_page.render_run_page`."""
    world = await make_world(real_page=True)
    await world.sign_in("alice")
    answer = await world.client.get(f"/runs/{world.runs[ALPHA]}")
    html = await answer.text()
    assert answer.status == 200 and answer.content_type == "text/html"
    assert world.runs[ALPHA] in html and "acme/alpha" in html
