"""docs/configuration.md lists exactly the variables gwi reads, and `gwi config check` works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import variables

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_reference_lists_every_variable_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", DOC.read_text(), re.MULTILINE))
    assert documented == set(variables())


def test_config_check_passes_on_a_valid_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "gwi.yml"
    good.write_text("approver_role: maintain\n")
    assert main(["config", "check", "--repo-config", str(good)]) == 0
    assert "configuration OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "config", "message"),
    [
        ({"GWI_WORKERS": "many"}, None, "bad setting GWI_WORKERS"),
        ({"GWI_SIGNING_KEY": ""}, None, "bad setting GWI_SIGNING_KEY: is set but empty"),
        ({}, "approver_role: owner\n", "approver_role"),
        ({}, "auto_run: [\n", "not valid YAML"),
    ],
)
def test_config_check_fails_with_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    env: dict[str, str], config: str | None, message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = ["config", "check"]
    if config is not None:
        (tmp_path / "gwi.yml").write_text(config)
        args += ["--repo-config", str(tmp_path / "gwi.yml")]
    assert main(args) == 2
    assert message in capsys.readouterr().out


def test_config_check_serve_requires_what_serve_needs(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--serve"]) == 2
    out = capsys.readouterr().out
    assert "GITHUB_WEBHOOK_SECRET is not set" in out and "GITHUB_APP_ID is not set" in out
