"""`.github/gwi.yml`: defaults, every setting, and clear errors for bad files."""

from __future__ import annotations

import pytest

from bot.github.repo_config import (
    DraftPolicy,
    RepoConfig,
    RepoConfigError,
    Role,
    parse_repo_config,
    role_meets,
    role_of,
)


def test_no_file_means_safe_defaults() -> None:
    for text in (None, b"", b"  \n", b"# nothing\n"):
        assert parse_repo_config(text) == RepoConfig()
    cfg = RepoConfig()
    assert cfg.auto_run and cfg.drafts is DraftPolicy.WAIT and cfg.approver_role is Role.WRITE


def test_every_setting() -> None:
    cfg = parse_repo_config(
        b"auto_run: false\ndrafts: run\nignore_paths: ['docs/*', '*.lock']\n"
        b"approver_role: maintain\nallow_self_approval: false\n"
    )
    assert not cfg.auto_run and cfg.drafts is DraftPolicy.RUN
    assert cfg.approver_role is Role.MAINTAIN and not cfg.allow_self_approval
    assert cfg.ignored("docs/a.md") and cfg.ignored("poetry.lock") and not cfg.ignored("src/a.py")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"auto_run: [unclosed\n", "not valid YAML at line 2"),
        (b"- a\n- b\n", "must be a mapping"),
        (b"approver_role: owner\n", "approver_role"),
        (b"approver_role: read\n", "approver_role: read is too weak to approve a push"),
        (b"auto_runn: true\n", "auto_runn: Extra inputs"),
        (b"drafts: sometimes\n", "drafts"),
        (b"\xff\xfe", "not UTF-8"),
        (b"a: &x [*x]\n", "gwi.yml"),
    ],
)
def test_bad_files_are_explained(text: bytes, message: str) -> None:
    with pytest.raises(RepoConfigError, match=message):
        parse_repo_config(text)


def test_roles() -> None:
    assert role_of("maintain", "write") is Role.MAINTAIN
    assert role_of("triage", "read") is Role.TRIAGE
    assert role_of("release-managers", "write") is Role.WRITE  # a custom role
    assert role_of(None, "none") is None
    assert role_meets(Role.ADMIN, Role.WRITE) and role_meets(Role.WRITE, Role.WRITE)
    assert not role_meets(Role.TRIAGE, Role.WRITE) and not role_meets(None, Role.READ)
