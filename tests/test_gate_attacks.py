"""Attacks on the approval gate, end to end: each one is refused, the remote's branch stays put,
and the run's audit log says why (docs/github-capabilities.md lists what stops each)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.github import handle_push as gate
from bot.runs.audit import build_line
from bot.runs.view import RunView
from bot.schemas.audit import AuditAction
from bot.schemas.common import sha256_hex
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE
from tests.conftest import signed_headers
from tests.gate_world import (
    BASE,
    BRANCH,
    PR,
    RepoBot,
    Template,
    approve,
    awaiting,
    awaiting_view,
    events,
    new_world,
    newest,
    push_tokens,
    pushes,
    refusal_codes,
    replies,
    seed,
)
from tests.github_harness import Bot
from tests.support import git

# -- the acts: what the attacker (or the world) does -------------------------------------------

Act = Callable[[Bot, RunView], Awaitable[None]]


async def comment(bot: Bot, body: str, **options: Any) -> None:
    await bot.deliver("issue_comment", bot.comment_payload(PR, body, **options))


def by(login: str, user_type: str = "User") -> Act:
    async def act(bot: Bot, view: RunView) -> None:
        await comment(bot, approve(view), login=login, user_type=user_type)
    return act


def says(text: Callable[[RunView], str], **options: Any) -> Act:
    async def act(bot: Bot, view: RunView) -> None:
        await comment(bot, text(view), **options)
    return act


async def post_approval(bot: Bot, view: RunView, secret: str | None) -> None:
    """The approval a person would post, delivered unsigned (None) or signed with ``secret``."""
    body = json.dumps({**bot.comment_payload(PR, approve(view)),
                       "installation": {"id": bot.installation}}).encode()
    headers = signed_headers(body, "issue_comment", f"forged-{bot.repo}", secret=secret or "x")
    if secret is None:
        del headers["X-Hub-Signature-256"]
    response = await bot.client.post("/webhook", data=body, headers=headers)
    assert response.status == 401
    await bot.idle()


async def unsigned(bot: Bot, view: RunView) -> None:
    await post_approval(bot, view, None)


async def badly_signed(bot: Bot, view: RunView) -> None:
    await post_approval(bot, view, "not-the-webhook-secret")


async def owner_association_only(bot: Bot, view: RunView) -> None:
    # The harness's payloads say author_association OWNER; GitHub says the person has no role.
    bot.fake.set_collaborator(bot.repo, "mallory", "none")
    payload = bot.comment_payload(PR, approve(view), login="mallory")
    assert payload["comment"]["author_association"] == "OWNER"
    await bot.deliver("issue_comment", payload)


async def prefix(bot: Bot, view: RunView) -> None:
    await comment(bot, f"/gwi approve {(view.patch_hash or '')[:19]}")


async def uppercase(bot: Bot, view: RunView) -> None:
    await comment(bot, f"/gwi approve {(view.patch_hash or '').upper().replace('SHA256', 'sha256')}")


async def wrong_hash(bot: Bot, view: RunView) -> None:
    await comment(bot, f"/gwi approve sha256:{sha256_hex(b'another patch')}")


async def stale_after_push(bot: Bot, view: RunView) -> None:
    bot.push(PR, {"notes.txt": "more work\n"})
    await bot.deliver("pull_request", bot.pull_payload(PR, "synchronize"))
    assert newest(bot).ctx.state is RunState.AWAITING_APPROVAL
    await comment(bot, approve(view))  # the first run's hash: its patch is not the new run's


async def other_pr_hash(bot: Bot, view: RunView) -> None:
    bot.remote.commit("other", {"requirements.txt": "flask==2.0.0\nrequests==2.3.0\n"},
                      "other: requests 2.3", new_branch=True, start="main~1")
    bot.open_pull(8, "other")
    await bot.deliver("pull_request", bot.pull_payload(8, "opened"))
    other = next(v for v in bot.views() if v.ctx.pull_request and v.ctx.pull_request.number == 8)
    assert other.ctx.state is RunState.AWAITING_APPROVAL and other.patch_hash != view.patch_hash
    await comment(bot, approve(other))


async def edited(bot: Bot, view: RunView) -> None:
    payload = bot.comment_payload(PR, approve(view), action="edited")
    payload["changes"] = {"body": {"from": "looks good"}}
    await bot.deliver("issue_comment", payload)


async def too_early(bot: Bot, view: RunView) -> None:
    # Posted while the run was still working (its job waited behind the run's): it cannot
    # have been about the patch, which did not exist yet.
    ready = [h.at for h in view.ctx.history if h.state is RunState.AWAITING_APPROVAL][-1]
    await comment(bot, approve(view), created_at=ready - timedelta(seconds=2))


async def no_run(bot: Bot, view: RunView) -> None:
    bot.open_pull(9, BRANCH)
    await bot.deliver("issue_comment", bot.comment_payload(9, approve(view)))
    assert any("there is no gwi run" in said for said in replies(bot, "maya", 9))


async def closed_unannounced(bot: Bot, view: RunView) -> None:
    bot.fake.pull(bot.repo, PR).state = "closed"  # the `closed` delivery is still on its way
    await comment(bot, approve(view))


async def closed(bot: Bot, view: RunView) -> None:
    bot.fake.pull(bot.repo, PR).state = "closed"
    await bot.deliver("pull_request", bot.pull_payload(PR, "closed"))
    await comment(bot, approve(view))


async def draft(bot: Bot, view: RunView) -> None:
    bot.fake.pull(bot.repo, PR).draft = True
    await comment(bot, approve(view))


def move_base(bot: Bot) -> None:
    bot.remote.commit("main", {"CHANGELOG": "later\n"}, "main moves on")
    bot.sync_base()


async def base_moved(bot: Bot, view: RunView) -> None:
    move_base(bot)
    await comment(bot, approve(view))


def retarget(bot: Bot) -> None:
    bot.remote.commit("release", {"RELEASE": "1\n"}, "release branch", new_branch=True)
    bot.sync_base("release")
    bot.fake.pull(bot.repo, PR).base_ref = "release"


async def retargeted(bot: Bot, view: RunView) -> None:
    retarget(bot)
    await comment(bot, approve(view))


async def self_approval(bot: Bot, view: RunView) -> None:
    await comment(bot, approve(view), login="contributor")


async def maya_approves(bot: Bot, view: RunView) -> None:
    await comment(bot, approve(view))


# -- hooks: what changes between the approval and the push ------------------------------------

Hook = Callable[[Bot], None]


def author_pushes(bot: Bot) -> None:
    bot.push(PR, {"notes.txt": "pushed while gwi was about to push\n"})


def comment_edited(bot: Bot) -> None:
    approving = [c for c in bot.comments(PR) if c.body.startswith("/gwi approve")][-1]
    approving.body += "\n\n(edited: not this one after all)"


def comment_deleted(bot: Bot) -> None:
    approving = [c for c in bot.comments(PR) if c.body.startswith("/gwi approve")][-1]
    del bot.fake.comments[approving.id]


def loses_role(bot: Bot) -> None:
    bot.fake.set_collaborator(bot.repo, "maya", "read")


def pr_closed(bot: Bot) -> None:
    bot.fake.pull(bot.repo, PR).state = "closed"


def pr_draft(bot: Bot) -> None:
    bot.fake.pull(bot.repo, PR).draft = True


def self_approval_turned_off(bot: Bot) -> None:
    bot.fake.set_file(bot.repo, ".github/gwi.yml", "allow_self_approval: false\n")


def tamper_and_forge_the_log(bot: Bot) -> None:
    """Change patch.diff and rewrite the audit chain to match (an attacker with the disk):
    only the signed approval still knows the approved bytes."""
    run_id = bot.views()[0].ctx.run_id
    folder = bot.runs.run_dir(run_id)
    patch = (folder / "patch.diff").read_bytes().replace(b"+requests==2.2.0", b"+requests==6.6.6")
    (folder / "patch.diff").write_bytes(patch)
    prev, lines = "0" * 64, []
    for event in bot.runs.read_chain(run_id).events:
        data = dict(event.data)
        if event.action is AuditAction.ARTIFACT_WRITTEN and data["artifact"] == "patch.diff":
            data.update(sha256=sha256_hex(patch), bytes=len(patch))
        line, rebuilt = build_line(seq=event.seq, ts=event.ts, run_id=run_id,
                                   actor=event.actor, action=event.action, data=data, prev=prev)
        lines.append(line)
        prev = rebuilt.hash
    (folder / "audit.log").write_bytes(b"".join(lines))


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    group: str
    name: str  # also the name of the repository the attack happens in
    act: Act = maya_approves
    #: the refusal code the run's audit log records; None when there is nothing it could
    #: record (the delivery never got in, the text is no command, or the run is sealed)
    code: str | None = None
    where: str = "first"  # the run whose log holds it: "first" (the approved one) or "newest"
    reply: str | None = None  # a phrase of gwi's reply to the commenter
    replied_to: str = "maya"
    config: str | None = None  # .github/gwi.yml
    before_apply: Hook | None = None  # changes the world after acceptance, before the push
    during_push: Hook | None = None  # ... after the re-checks, just before the push
    minted: bool = False  # a contents-write token was minted (the push itself was refused)
    new_run: bool = False  # a run was started on what changed


NO_SELF_APPROVAL = "allow_self_approval: false\n"
ATTACKS = [
    Attack("deliveries", "no-signature", unsigned),
    Attack("deliveries", "bad-signature", badly_signed),
    Attack("deliveries", "edited-comment", edited, "edited", reply="new comment"),
    Attack("deliveries", "in-a-quote", says(lambda v: f"> {approve(v)}\n\nWhy approve this?")),
    Attack("deliveries", "in-a-code-block", says(lambda v: f"Type:\n\n```\n{approve(v)}\n```")),
    Attack("deliveries", "mid-line", says(lambda v: f"I would say {approve(v)} but no")),
    Attack("deliveries", "in-an-html-comment", says(lambda v: f"LGTM\n<!--\n{approve(v)}\n-->")),
    Attack("deliveries", "two-commands", says(lambda v: f"{approve(v)}\n{approve(v)}\n"),
           "several_commands", reply="one command per comment"),
    Attack("deliveries", "approve-and-run", says(lambda v: f"{approve(v)}\n/gwi run\n"),
           "several_commands", reply="one command per comment"),
    Attack("approvers", "read-user", by("rita"), "permission", reply="needs the write role",
           replied_to="rita"),
    Attack("approvers", "triage-user", by("tess"), "permission", reply="needs the write role",
           replied_to="tess"),
    Attack("approvers", "non-collaborator", by("stranger"), "permission",
           reply="needs the write role", replied_to="stranger"),
    Attack("approvers", "the-app-itself", by("gwi-test[bot]", "Bot"), "bot"),
    Attack("approvers", "another-bot", by("helper[bot]", "Bot"), "bot"),
    Attack("approvers", "owner-association-without-role", owner_association_only, "permission",
           reply="needs the write role", replied_to="mallory"),
    Attack("approvers", "self-approval", self_approval, "self_approval",
           reply="own pull requests", replied_to="contributor", config=NO_SELF_APPROVAL),
    Attack("hashes", "hash-prefix", prefix, "malformed_hash", reply="64 hex digits"),
    Attack("hashes", "hash-uppercase", uppercase, "malformed_hash", reply="lowercase"),
    Attack("hashes", "wrong-hash", wrong_hash, "wrong_hash", reply="is not the patch of this run"),
    Attack("hashes", "stale-hash-after-new-push", stale_after_push, "wrong_hash", where="newest",
           reply="is not the patch of this run"),
    Attack("hashes", "other-pr-hash", other_pr_hash, "wrong_hash",
           reply="is not the patch of this run"),
    Attack("timing", "before-the-patch-existed", too_early, "too_early", reply="before"),
    Attack("timing", "no-run", no_run),
    Attack("timing", "closed-not-yet-announced", closed_unannounced, "closed", reply="closed"),
    Attack("timing", "closed", closed, None, reply="closed"),
    Attack("timing", "draft", draft, "draft", reply="draft"),
    Attack("timing", "base-moved", base_moved, "stale", reply="moved", new_run=True),
    Attack("timing", "retargeted", retargeted, "stale", reply="now targets release",
           new_run=True),
    # between the approval and the push: everything is checked again, live
    Attack("before-the-push", "head-moved", before_apply=author_pushes, code="stale",
           new_run=True),
    Attack("before-the-push", "base-moved-later", before_apply=move_base, code="stale",
           new_run=True),
    Attack("before-the-push", "retargeted-later", before_apply=retarget, code="stale",
           new_run=True),
    Attack("before-the-push", "closed-later", before_apply=pr_closed, code="closed"),
    Attack("before-the-push", "draft-later", before_apply=pr_draft, code="draft"),
    Attack("before-the-push", "comment-edited", before_apply=comment_edited,
           code="comment_edited"),
    Attack("before-the-push", "comment-deleted", before_apply=comment_deleted,
           code="comment_deleted"),
    Attack("before-the-push", "approver-lost-role", before_apply=loses_role,
           code="permission_lost"),
    Attack("before-the-push", "self-approval-forbidden-later", self_approval,
           before_apply=self_approval_turned_off, code="self_approval"),
    Attack("before-the-push", "patch-tampered-log-forged", before_apply=tamper_and_forge_the_log,
           code="patch_tampered"),
    Attack("before-the-push", "head-moved-during-push", during_push=author_pushes, code="stale",
           minted=True, new_run=True),
]
GROUPS = sorted({a.group for a in ATTACKS})


@pytest.mark.parametrize("group", GROUPS)
async def test_attacks_are_refused(make_bot: Callable[..., Any], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    """Each attack of the group in its own repository, all at once; every one must fail."""
    attacks = [a for a in ATTACKS if a.group == group]
    arena = await make_bot(BASE, workers=4)
    template = Template.build(tmp_path)
    worlds = [await new_world(arena, template, tmp_path / "worlds", a.name, a.config)
              for a in attacks]
    for world in worlds:
        await world.deliver("pull_request", world.pull_payload(PR, "opened"), wait=False)
    await arena.idle()
    views = [awaiting_view(world) for world in worlds]
    hook(monkeypatch, "_verified", {w.repo: (a.before_apply, w) for a, w in zip(
        attacks, worlds, strict=True) if a.before_apply})
    hook(monkeypatch, "_push_with_lease", {w.repo: (a.during_push, w) for a, w in zip(
        attacks, worlds, strict=True) if a.during_push})

    await asyncio.gather(*(a.act(w, v) for a, w, v in zip(attacks, worlds, views, strict=True)))
    await arena.idle()

    failed = []
    for attack, world, view in zip(attacks, worlds, views, strict=True):
        try:
            check(attack, world, view)
        except AssertionError as exc:
            failed.append(f"{attack.name}: {exc}")
    assert not failed, "\n".join(failed)


def check(attack: Attack, bot: RepoBot, view: RunView) -> None:
    # The branch is where its author left it (gwi's push would not show in the fake).
    assert bot.remote.sha(f"refs/heads/{BRANCH}") == bot.fake.pull(bot.repo, PR).head_sha
    tip_author = git(bot.remote.bare, "log", "-1", "--format=%an", f"refs/heads/{BRANCH}").strip()
    assert not tip_author.endswith("[bot]"), tip_author
    assert all(v.ctx.outcome is not Outcome.APPLIED for v in bot.views())
    assert bool(push_tokens(bot)) is attack.minted, "contents-write token"
    if attack.code is not None:
        run = view if attack.where == "first" else newest(bot)
        assert attack.code in refusal_codes(bot, run.ctx.run_id), \
            refusal_codes(bot, run.ctx.run_id)
    else:
        assert all(v.approval is None for v in bot.views())
        assert not refusal_codes(bot, view.ctx.run_id), refusal_codes(bot, view.ctx.run_id)
    if attack.reply is not None:
        said = replies(bot, attack.replied_to)
        assert said and attack.reply in said[-1], said
        assert "Traceback" not in said[-1] and "ghs_" not in said[-1]
    if attack.new_run:
        latest = newest(bot)
        assert latest.ctx.run_id != view.ctx.run_id, "no new run"
        assert latest.ctx.head.sha == bot.fake.pull(bot.repo, PR).head_sha
        first = next(v for v in bot.views() if v.ctx.run_id == view.ctx.run_id)
        assert first.ctx.outcome is Outcome.STALE, first.ctx.outcome


def hook(monkeypatch: pytest.MonkeyPatch, name: str,
         hooks: dict[str, tuple[Hook | None, RepoBot]]) -> None:
    """Make the gate's ``name`` first run, once, the hook of the repository it works on."""
    if not hooks:
        return
    original = getattr(gate, name)
    fired: set[str] = set()

    def before(repository: str) -> None:
        found = hooks.get(repository)
        if found is not None and repository not in fired:
            fired.add(repository)
            action, world = found
            assert action is not None
            action(world)

    if name == "_verified":  # (gh, run_id), in a worker thread
        def verified(gh: Any, run_id: str) -> Any:
            before(gh.runs.read_context(run_id).repository.full_name)
            return original(gh, run_id)
        monkeypatch.setattr(gate, name, verified)
    else:  # _push_with_lease(cache, repository, url, **options), a coroutine
        async def push(cache: Any, repository: str, *args: Any, **kwargs: Any) -> Any:
            await asyncio.to_thread(before, repository)
            return await original(cache, repository, *args, **kwargs)
        monkeypatch.setattr(gate, name, push)


# -- duplicates and storms --------------------------------------------------------------------


async def test_the_same_delivery_twice_pushes_once(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    payload = bot.comment_payload(PR, approve(view))
    assert await bot.deliver("issue_comment", payload, delivery_id="approval-1") == 202
    assert await bot.deliver("issue_comment", payload, delivery_id="approval-1") == 200
    assert pushes(bot) == 1 and len(push_tokens(bot)) == 1
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED


async def test_ten_concurrent_redeliveries_of_one_approval_push_once(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await awaiting(make_bot)
    payload = bot.comment_payload(PR, approve(view))
    statuses = await asyncio.gather(*(
        bot.deliver("issue_comment", payload, delivery_id=f"redelivery-{n}", wait=False)
        for n in range(10)))
    assert statuses == [202] * 10
    await bot.idle()
    assert pushes(bot) == 1 and len(push_tokens(bot)) == 1
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED
    assert [e.action for e in events(bot, view.ctx.run_id)].count(AuditAction.REF_UPDATED) == 1
    assert len(replies(bot)) == 1  # one job per comment, however often it came


async def test_a_second_approver_never_causes_a_second_push(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    first = bot.comment_payload(PR, approve(view), login="maya")
    second = bot.comment_payload(PR, approve(view), login="omar")
    await bot.deliver("issue_comment", first, wait=False)
    await bot.deliver("issue_comment", second, wait=False)
    await bot.idle()
    assert pushes(bot) == 1 and len(push_tokens(bot)) == 1
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED
    # Commands are handled concurrently: either may come first; the other is refused.
    assert view.approval is not None and view.approval.approver.login in ("maya", "omar")
    winner = view.approval.approver.login
    loser = "omar" if winner == "maya" else "maya"
    assert refusal_codes(bot, view.ctx.run_id) == ["already_approved"]
    assert f"already approved by @{winner}" in replies(bot, loser)[-1]
    # one more after the push finds the run done: refused, nothing moves
    await comment(bot, approve(view), login="omar")
    assert pushes(bot) == 1
    assert "not approved: the run is done" in replies(bot, "omar")[-1]


async def test_replies_are_capped_under_a_storm_of_bad_approvals(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await awaiting(make_bot)
    for n in range(12):
        await bot.deliver("issue_comment", bot.comment_payload(
            PR, f"/gwi approve sha256:{sha256_hex(str(n).encode())}", login="rita"), wait=False)
    await bot.idle()
    rita = replies(bot, "rita")  # at most 5 refusals per pull request in 10 minutes...
    assert len(rita) == 6 and sum("not approved" in r for r in rita) == 5
    assert sum("stops answering them until about" in r for r in rita) == 1  # ...then one notice
    # her first 10 are audited; past her budget, the storm is recorded once (issue 17, item 10)
    assert refusal_codes(bot, view.ctx.run_id) == ["permission"] * 10
    assert sum(e.data.get("storm") == "commands" for e in events(bot, view.ctx.run_id)) == 1
    # a good approval in the same storm still works, and is answered: only refusals are rationed
    await comment(bot, approve(view))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED and pushes(bot) == 1
    assert [r for r in replies(bot, "maya") if "approved: pushing" in r]


async def test_a_read_approver_role_is_a_config_error_not_an_open_door(
    make_bot: Callable[..., Any]
) -> None:
    """`approver_role: read` would let anyone approve on a public repository (issue 17, 11)."""
    made = await make_bot(BASE)
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    seed(bot, "approver_role: read\n")
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    assert bot.views() == []  # no run: the configuration is refused
    [check] = bot.check_runs()
    assert check.conclusion == "failure" and "read is too weak" in check.output["summary"]
    await bot.deliver("issue_comment", bot.comment_payload(
        PR, "/gwi approve sha256:" + "a" * 64, login="rita"))
    assert pushes(bot) == 0 and push_tokens(bot) == []
    assert "gwi cannot act here until this is fixed" in replies(bot, "rita")[-1]


# -- replays under a new delivery id, and reopening (issue 17, items 3 and 12) ---------------


async def test_a_replayed_close_does_not_abort_the_run_of_an_open_pull_request(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await awaiting(make_bot)
    captured = bot.pull_payload(PR, "closed")
    captured["pull_request"]["state"] = "closed"  # as it was when GitHub first sent it
    await bot.deliver("pull_request", captured, delivery_id="replayed-under-a-new-id")
    [after] = bot.views()
    assert after.ctx.state is RunState.AWAITING_APPROVAL  # GitHub says the PR is open
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert pushes(bot) == 1


async def test_a_replayed_base_change_supersedes_nothing(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    for n in range(3):
        await bot.deliver("pull_request", bot.pull_payload(PR, "edited", base={"ref": {
            "from": "old-base"}}), delivery_id=f"edited-replay-{n}")
    assert [v.ctx.run_id for v in bot.views()] == [view.ctx.run_id]
    assert bot.views()[0].ctx.state is RunState.AWAITING_APPROVAL


async def test_a_reopened_pull_request_gets_a_run_once(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    bot.fake.pull(bot.repo, PR).state = "closed"
    await bot.deliver("pull_request", bot.pull_payload(PR, "closed"))
    assert bot.views()[0].ctx.outcome is Outcome.CANCELLED
    bot.fake.pull(bot.repo, PR).state = "open"
    reopened = bot.pull_payload(PR, "reopened")
    await bot.deliver("pull_request", reopened)
    await bot.deliver("pull_request", reopened, delivery_id="reopened-replayed")
    runs = sorted(bot.views(), key=lambda v: v.ctx.created_at)
    assert len(runs) == 2 and runs[-1].ctx.state is RunState.AWAITING_APPROVAL
    assert runs[-1].ctx.head.sha == view.ctx.head.sha


async def test_who_asked_for_the_run_cannot_approve_it_without_self_approval(
    make_bot: Callable[..., Any]
) -> None:
    """Separation of duties counts the run's requester as an author (issue 17, item 2)."""
    bot, _ = await awaiting(make_bot, config="allow_self_approval: false\n")
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi run", login="maya"))
    requested = newest(bot)
    assert requested.ctx.state is RunState.AWAITING_APPROVAL
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(requested), login="maya"))
    assert pushes(bot) == 0 and push_tokens(bot) == []
    assert "self_approval" in refusal_codes(bot, requested.ctx.run_id)
    assert "the person who asked for a run" in replies(bot, "maya")[-1]
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(requested), login="omar"))
    assert pushes(bot) == 1


async def test_installations_of_accounts_not_allowed_get_nothing(
    make_bot: Callable[..., Any]
) -> None:
    """Issue 17, item 9: with GWI_ALLOWED_OWNERS, another account's deliveries are answered
    2xx and recorded, and nothing else happens: no run, no token minted."""
    made = await make_bot(BASE, GWI_ALLOWED_OWNERS="someone-else, Another-Org")
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    seed(bot)
    assert await bot.deliver("pull_request", bot.pull_payload(PR, "opened")) == 202
    assert bot.views() == [] and bot.check_runs() == [] and bot.fake.tokens == []
    stored = await bot.client.app[STORE].get_delivery(bot.sent[-1])
    assert stored is not None and stored.status.value == "done"
    assert stored.repository is not None and stored.repository.lower() == bot.repo.lower()


async def test_an_allowed_owner_is_served_whatever_its_case(make_bot: Callable[..., Any]) -> None:
    made = await make_bot(BASE, GWI_ALLOWED_OWNERS="OCTO-ORG")
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    seed(bot)
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    assert awaiting_view(bot).ctx.state is RunState.AWAITING_APPROVAL


async def test_a_base_that_moves_while_the_token_is_minted_stops_the_push(
    make_bot: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17, item 5: the last look is taken after the push token exists."""
    from bot.github.auth import AppAuth

    bot, view = await awaiting(make_bot)
    original = AppAuth.mint_once

    async def mint_then_move(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = await original(self, *args, **kwargs)
        bot.fake.set_ref(bot.repo, "heads/main", "e" * 40)  # main moved meanwhile
        return token

    monkeypatch.setattr(AppAuth, "mint_once", mint_then_move)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert pushes(bot) == 0
    [approved] = [v for v in bot.views() if v.ctx.run_id == view.ctx.run_id]
    assert approved.ctx.outcome is Outcome.STALE


async def test_a_pr_retargeted_during_the_push_is_reported_at_once(
    make_bot: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot, view = await awaiting(make_bot)
    original = gate._push_with_lease

    async def push_then_retarget(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        bot.fake.pull(bot.repo, PR).base_ref = "release"  # retargeted as the push landed
        bot.fake.set_ref(bot.repo, "heads/release", "d" * 40)
        return result

    monkeypatch.setattr(gate, "_push_with_lease", push_then_retarget)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert pushes(bot) == 1
    commit = bot.remote.sha(f"refs/heads/{BRANCH}")
    [check] = bot.check_runs()
    assert check.output["title"] == "Pushed, but the base moved during the push"
    assert commit[:12] in check.output["summary"] and "now targets release" in check.output[
        "summary"]
    warned = [c.body for c in bot.bot_comments(PR) if "the base moved during the push" in c.body]
    assert len(warned) == 1 and commit[:12] in warned[0]
