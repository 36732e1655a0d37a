"""The checks an approval must pass against GitHub as it is now: head and base, the approver's
current role, who wrote the pull request, and the approving comment as GitHub holds it.
"""

from __future__ import annotations

from bot.engine.approval import (
    ApprovalRefused,
)
from bot.github.client import RepoClient
from bot.github.jobs import Commenter
from bot.github.models import PullRequest
from bot.github.repo_config import (
    RepoConfig,
    Role,
    role_meets,
    role_of,
)
from bot.github.service import GitHubService
from bot.schemas.common import sha256_hex
from bot.schemas.run import ActorType, RunContext


async def head_and_base_hold(client: RepoClient, pr: PullRequest, run_head: str,
                              run_base: str, base_ref: str) -> str | None:
    """Why the PR no longer matches the run (head or base moved, retargeted), or None."""
    if pr.head.sha != run_head:
        return f"the pull request's head moved to {pr.head.sha[:12]} since the run"
    if pr.base.ref != base_ref:
        return f"the pull request now targets {pr.base.ref}, not {base_ref}"
    tip = await client.get_ref(f"heads/{pr.base.ref}")
    if tip is None or tip.sha != run_base:
        return f"{pr.base.ref} moved since the run"
    return None


async def current_role(client: RepoClient, login: str, account_id: int, needed: Role) -> str | None:
    """The role ``login`` holds now, if it is the account ``account_id`` and meets ``needed``.

    The id is compared because a login can change hands: the record binds the account, and
    whoever holds the name today is not necessarily who approved.
    """
    permission = await client.get_collaborator_permission(login)
    if permission.user is not None and permission.user.id != account_id:
        return None
    role = role_of(permission.role_name, permission.permission)
    if not role_meets(role, needed):
        return None
    return role.value if role else permission.role_name


def same_login(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()  # GitHub logins ignore case


def is_author(pr: PullRequest, login: str, account_id: int | None) -> bool:
    """Whether the approver wrote the pull request (the same account, whatever its login)."""
    if pr.user is None:
        return False
    return pr.user.id == account_id or same_login(pr.user.login, login)


def is_requester(ctx: RunContext, login: str) -> bool:
    """Whether ``login`` asked for the run (`/gwi run`): with self-approval forbidden, the
    person who asked for a run must not be the one who approves it."""
    return ctx.initiator.type is ActorType.USER and same_login(ctx.initiator.id, login)


async def comment_holds(client: RepoClient, comment_id: int, body_sha256: str,
                         login: str) -> None:
    """The approving comment still exists, by its author, with the very words approved."""
    comment = await client.get_comment(comment_id)
    if comment is None:
        raise ApprovalRefused("the approving comment was deleted", code="comment_deleted")
    if comment.user is not None and not same_login(comment.user.login, login):
        raise ApprovalRefused("the approving comment is not by the approver",
                              code="comment_author")
    if sha256_hex(comment.body.encode()) != body_sha256:
        raise ApprovalRefused("the approving comment was edited", code="comment_edited")


async def allowed(gh: GitHubService, client: RepoClient, person: Commenter,
                   config: RepoConfig) -> str:
    """The person's role if they may approve; refuses bots, the App and too weak a role.

    `author_association` in the payload is never consulted: it is not an authorisation (private
    organisation members show up as CONTRIBUTOR or NONE, and it lags behind role changes).
    """
    if person.is_bot or same_login(person.login, await gh.app.bot_login()):
        raise ApprovalRefused("approvals come from people, not from apps or bots", code="bot")
    role = await current_role(client, person.login, person.id, config.approver_role)
    if role is None:
        raise ApprovalRefused(
            f"@{person.login} needs the {config.approver_role.value} role or higher to approve",
            code="permission",
        )
    return role
