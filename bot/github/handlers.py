"""Every GitHub job kind and the handler that does it: the registry the workers dispatch by."""

from __future__ import annotations

from bot.github.handle_abort import abort_pr
from bot.github.handle_command import handle_command
from bot.github.handle_push import push_approved
from bot.github.handle_reconcile import reconcile_pr
from bot.github.handle_run import run_pr
from bot.github.jobs import ABORT_JOB, APPLY_JOB, COMMAND_JOB, RECONCILE_JOB, RUN_JOB
from bot.queue.workers import JobHandler

JOB_HANDLERS: dict[str, JobHandler] = {
    RUN_JOB: run_pr,
    ABORT_JOB: abort_pr,
    RECONCILE_JOB: reconcile_pr,
    COMMAND_JOB: handle_command,
    APPLY_JOB: push_approved,
}
