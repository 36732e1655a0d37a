"""Slash commands on pull requests: acknowledged with a reaction, then carried out by a job.

`/gwi run`, `/gwi abort`, `/gwi status`, `/gwi help` and `/gwi approve sha256:<hash>`; anything
else gets the help text. Replies are short and never show internals. A comment storm cannot
make gwi spam nor fill audit logs: each sender's commands are budgeted per repository (past it,
no reaction, no audit line, no reply: the storm is recorded once), refusals are rationed per pull
request, and people with the approver role are never silenced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot import logs
from bot.engine.approval import (
    ApprovalRefused,
)
from bot.github.client import RepoClient
from bot.github.failures import GitHubError
from bot.github.handle_approve import accept_approval, audit_line, audit_refusal
from bot.github.jobs import (
    ABORT_JOB,
    AbortRequest,
    ApproveRequest,
    CommandRequest,
    RunRequest,
    enqueue_run,
)
from bot.github.publish import load_config, reply
from bot.github.render import help_text
from bot.github.repo_config import (
    RepoConfig,
    RepoConfigError,
    role_meets,
    role_of,
)
from bot.github.service import GitHubService
from bot.github.slash_commands import Command, CommandKind, CommandOutcome, parse_comment
from bot.queue.records import Job, UnitOfWork
from bot.runs.view import RunView
from bot.schemas.audit import AuditAction
from bot.schemas.state import Outcome

log = logs.get_logger("gwi.commands")


class Standing:
    """Whether the sender holds the approver role here, asked of GitHub once and only when it
    matters (a budget is spent): such people are never silenced."""

    def __init__(self, client: RepoClient, request: CommandRequest) -> None:
        self.client = client
        self.request = request
        self._answer: bool | None = None

    async def is_approver(self) -> bool:
        if self._answer is None:
            self._answer = not self.request.sender.is_bot and await self._ask()
        return self._answer

    async def _ask(self) -> bool:
        try:
            config = await load_config(self.client)
        except RepoConfigError:
            config = RepoConfig()
        permission = await self.client.get_collaborator_permission(self.request.sender.login)
        return role_meets(role_of(permission.role_name, permission.permission),
                          config.approver_role)


async def handle_command(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    request = CommandRequest.model_validate(job.payload)
    parsed = parse_comment(request.comment_body)
    if not parsed.commands:
        return
    with logs.bind(repository=request.repository, pr=request.number):
        client = gh.work_client(request.installation_id, request.repository)
        standing = Standing(client, request)
        if not await _within_budget(gh, client, request, standing):
            return
        if request.sender.is_bot or request.edited:
            await _refuse_unread(gh, client, request, standing)
            return
        try:  # acknowledge first (Prow's hook does the same), then work
            await client.add_reaction(request.comment_id, "eyes")
        except GitHubError as exc:
            log.warning("command.no_reaction", error=exc.reason)
        if parsed.outcome is CommandOutcome.MULTIPLE:
            run = await gh.index.latest(request.repository, request.number)
            if any(c.kind in (CommandKind.APPROVE, CommandKind.MALFORMED) for c in
                   parsed.commands):
                await audit_refusal(gh, run, AuditAction.APPROVAL_REFUSED, ApprovalRefused(
                    "several commands in one comment", code="several_commands"),
                    request.sender.login, {"comment_id": request.comment_id})
            await reply(gh, client, request, "one command per comment, please: none of"
                        f" the {len(parsed.commands)} commands in that comment was carried out.",
                        refusal=True, exempt=standing.is_approver)
            return
        command = parsed.command
        assert command is not None
        try:
            config = await load_config(client)
        except RepoConfigError as error:
            await reply(gh, client, request, f"gwi cannot act here until this is fixed: {error}")
            return
        await _carry_out(gh, client, request, command, config, unit, standing)


async def _within_budget(gh: GitHubService, client: RepoClient, request: CommandRequest,
                         standing: Standing) -> bool:
    """Each sender's commands on a repository are budgeted (a reaction, audit lines, a reply
    each); past the budget gwi does nothing for them but record the storm once per window.
    People with the approver role are never stopped."""
    scope = f"commands:{request.repository.lower()}:{request.sender.login.lower()}"
    if await gh.index.take_slot(scope, limit=gh.command_limit, window=gh.command_window):
        return True
    if await standing.is_approver():
        return True
    gh.metrics.commands_ignored.inc()
    if not await gh.index.take_slot(scope + ":storm", limit=1, window=gh.command_window):
        return False
    log.warning("command.storm", sender=request.sender.login, limit=gh.command_limit,
                window_s=gh.command_window)
    run = await gh.index.latest(request.repository, request.number)
    resume = datetime.now(UTC) + timedelta(seconds=gh.command_window)
    await audit_line(gh, run, AuditAction.NOTE, request.sender.login, {
        "storm": "commands", "sender": request.sender.login, "limit": gh.command_limit,
        "window_s": gh.command_window, "comment_id": request.comment_id,
        "ignored_until": resume.isoformat(timespec="seconds")})
    if not request.sender.is_bot:
        await reply(gh, client, request, (
            f"more than {gh.command_limit} commands from you on this repository in"
            f" {gh.command_window / 60:g} minutes: gwi ignores your commands until about"
            f" {resume:%H:%M} UTC."), refusal=True)
    return False


async def _may_act(gh: GitHubService, client: RepoClient, request: CommandRequest,
                   config: RepoConfig, what: str) -> bool:
    sender = request.sender
    if sender.is_bot:
        return False
    permission = await client.get_collaborator_permission(sender.login)
    if role_meets(role_of(permission.role_name, permission.permission), config.approver_role):
        return True
    await reply(gh, client, request,
                f"`/gwi {what}` needs the {config.approver_role.value} role or higher.",
                refusal=True)
    return False


async def _refuse_unread(gh: GitHubService, client: RepoClient,
                         request: CommandRequest, standing: Standing) -> None:
    """An approval in an edit, or by an app or bot: audited, never carried out. Bots get no
    reply (two bots answering each other would never stop)."""
    if request.sender.is_bot:
        refusal = ApprovalRefused("approvals come from people, not from apps or bots", code="bot")
    else:
        refusal = ApprovalRefused("an edited comment is never read as an approval; post a new"
                                  " comment", code="edited")
    run = await gh.index.latest(request.repository, request.number)
    await audit_refusal(gh, run, AuditAction.APPROVAL_REFUSED, refusal, request.sender.login,
                        {"comment_id": request.comment_id})
    log.info("approval.refused", code=refusal.code, sender=request.sender.login)
    if not request.sender.is_bot:
        await reply(gh, client, request, f"not approved: {refusal.reason}.", refusal=True,
                    exempt=standing.is_approver)


async def _carry_out(gh: GitHubService, client: RepoClient, request: CommandRequest,
                     command: Command, config: RepoConfig, unit: UnitOfWork,
                     standing: Standing) -> None:
    kind = command.kind
    log.info("command", kind=kind.value, sender=request.sender.login)
    if kind is CommandKind.HELP:
        await reply(gh, client, request, "\n\n" + help_text(config.approver_role.value))
    elif kind is CommandKind.UNKNOWN:
        # Echoed inside a code span: no control or format characters (NUL, escapes, a
        # right-to-left override), and no backtick that would end the span early.
        word = "".join(c for c in command.word[:40] if c.isprintable() and c != "`") or "?"
        await reply(gh, client, request,
                    f"unknown command `/gwi {word}`.\n\n" + help_text(config.approver_role.value))
    elif kind is CommandKind.MALFORMED:
        if command.word == "approve":
            run = await gh.index.latest(request.repository, request.number)
            await audit_refusal(gh, run, AuditAction.APPROVAL_REFUSED,
                                ApprovalRefused(command.reason or "malformed",
                                                code="malformed_hash"),
                                request.sender.login, {"comment_id": request.comment_id})
        await reply(gh, client, request, f"{command.reason}.", refusal=True,
                    exempt=standing.is_approver)
    elif kind is CommandKind.STATUS:
        await reply(gh, client, request, await _status(gh, request))
    elif kind is CommandKind.RUN:
        if await _may_act(gh, client, request, config, "run"):
            enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                         installation_id=request.installation_id, forced=True,
                                         requester=request.sender,
                                         trigger=f"/gwi run by @{request.sender.login}"),
                        dedupe=f"comment:{request.comment_id}")
            await reply(gh, client, request, "starting a new run on the current head.")
    elif kind is CommandKind.ABORT:
        latest = await gh.index.latest(request.repository, request.number)
        if latest is None or latest.finished:
            state = gh.runs.read_context(latest.run_id).state.value if latest else None
            await reply(gh, client, request, "nothing to abort: " + (
                f"run `{latest.run_id}` is already {state}." if latest
                else "gwi has not run on this pull request."))
        elif await _may_act(gh, client, request, config, "abort"):
            unit.enqueue_job(ABORT_JOB, AbortRequest(
                repository=request.repository, number=request.number,
                installation_id=request.installation_id, outcome=Outcome.CANCELLED,
                reason=f"aborted by @{request.sender.login}", actor=request.sender.login,
            ).model_dump(), idempotency_key=f"abort:comment:{request.comment_id}")
            await reply(gh, client, request, f"aborting run `{latest.run_id}`.")
    elif kind is CommandKind.APPROVE:
        await _approve(gh, client, request, command, config, unit, standing)


async def _approve(gh: GitHubService, client: RepoClient, request: CommandRequest,
                   command: Command, config: RepoConfig, unit: UnitOfWork,
                   standing: Standing) -> None:
    approve = ApproveRequest(
        repository=request.repository, number=request.number,
        installation_id=request.installation_id, delivery_id=request.delivery_id,
        comment_id=request.comment_id, comment_url=request.comment_url,
        comment_body=request.comment_body, comment_created_at=request.comment_created_at,
        sender=request.sender, hash_text=command.patch_hash or "",
    )
    try:
        text = await accept_approval(gh, client, approve, config, unit)
    except ApprovalRefused as refusal:
        run = await gh.index.latest(request.repository, request.number)
        await audit_refusal(gh, run, AuditAction.APPROVAL_REFUSED, refusal,
                            request.sender.login, {"comment_id": request.comment_id,
                                                   "offered": (command.patch_hash or "")[:80]})
        log.info("approval.refused", code=refusal.code, sender=request.sender.login)
        await reply(gh, client, request, f"not approved: {refusal.reason}.", refusal=True,
                    exempt=standing.is_approver)
        return
    await reply(gh, client, request, text)


async def _status(gh: GitHubService, request: CommandRequest) -> str:
    run = await gh.index.latest(request.repository, request.number)
    if run is None:
        return "gwi has not run on this pull request yet."
    view = RunView.load(gh.runs, run.run_id)
    ctx = view.ctx
    text = f"run `{ctx.run_id}` on `{ctx.head.sha[:12]}` is **{ctx.state.value}**" + (
        f" ({ctx.outcome.value})" if ctx.outcome else "") + f": {ctx.history[-1].reason}"
    if view.patch_hash and ctx.state.value == "awaiting_approval":
        text += f"\n\nPatch hash: `{view.patch_hash}`"
    return text
