"""The people who can approve hear of approval requests from beside every delivery worker (broadcaster.hooks)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.settings import Settings
from broadcaster.users.notice_runner import ApprovalNoticeRunner


def approval_notice_runner(settings: Settings) -> hooks.Runner:
    return ApprovalNoticeRunner(settings)


hooks.runners.register(approval_notice_runner)
