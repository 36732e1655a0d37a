"""The web process's settings: defaults, the environment, and one clear line when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import GwiError
from bot.settings import Settings, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GWI_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.data_dir == tmp_path / "xdg" / "gwi"
    assert settings.server.workers == 2
    assert settings.server.log_level == "INFO"
    assert settings.server.max_body_bytes == 25 * 1024 * 1024
    assert settings.server.webhook_secret is None


def test_the_environment_sets_every_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in {
        "PORT": "9000",
        "GWI_DATA_DIR": str(tmp_path / "d"),
        "GITHUB_WEBHOOK_SECRET": "new-webhook-secret",
        "GITHUB_WEBHOOK_SECRET_OLD": "old-webhook-secret",
        "GWI_WORKERS": "4",
        "GWI_LOG_LEVEL": "debug",
        "GWI_MAX_BODY_BYTES": "2048",
        "GWI_LEASE_SECONDS": "5",
    }.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    server = settings.server
    assert (server.port, server.workers, server.log_level) == (9000, 4, "DEBUG")
    assert settings.data_dir == tmp_path / "d"
    assert settings.server.webhook_secrets() == ("new-webhook-secret", "old-webhook-secret")
    assert (settings.server.max_body_bytes, settings.server.lease_seconds) == (2048, 5.0)


def test_settings_are_frozen() -> None:
    settings = load_settings({"GITHUB_WEBHOOK_SECRET": "s"})
    with pytest.raises(ValueError):
        settings.server.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_a_relative_data_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GWI_DATA_DIR", "relative/dir")
    assert load_settings().data_dir.is_absolute()


def test_an_empty_secret_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET_OLD", "")
    settings = load_settings()
    with pytest.raises(GwiError, match="GITHUB_WEBHOOK_SECRET is not set"):
        settings.server.webhook_secrets()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("GWI_WORKERS", "0"),
        ("GWI_LOG_LEVEL", "loud"),
        ("GWI_MAX_BODY_BYTES", "-1"),
        ("GWI_LEASE_SECONDS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(GwiError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"bad setting {name}: ") and "\n" not in message


def test_a_secret_is_never_echoed_in_an_error() -> None:
    with pytest.raises(GwiError) as caught:
        load_settings({"GITHUB_WEBHOOK_SECRET": 12345})
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "gwi: error: GITHUB_WEBHOOK_SECRET is not set"),
        ({"GITHUB_WEBHOOK_SECRET": "s", "PORT": "x"}, "gwi: error: bad setting PORT"),
        ({"GITHUB_WEBHOOK_SECRET": "s", "GWI_WORKERS": "many"}, "bad setting GWI_WORKERS"),
    ],
)
def test_gwi_serve_stops_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["serve"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"GITHUB_WEBHOOK_SECRET": "x"}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_WEBHOOK_SECRET": "   "}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_WEBHOOK_SECRET": " " * 20}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_WEBHOOK_SECRET": "fifteen-chars!!"}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_WEBHOOK_SECRET": "  padded-short  "}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_WEBHOOK_SECRET": "a-long-enough-secret", "GITHUB_WEBHOOK_SECRET_OLD": "old"},
         "GITHUB_WEBHOOK_SECRET_OLD"),
    ],
)
def test_a_weak_webhook_secret_does_not_start_the_server(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(GwiError, match=f"^{name} is too weak: it needs at least 16"):
        load_settings().server.webhook_secrets()


def test_sixteen_characters_are_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "sixteen-chars-ok")
    assert load_settings().server.webhook_secrets() == ("sixteen-chars-ok",)
