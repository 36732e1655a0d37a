"""GitHub settings: read from the environment, keys checked, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from bot.errors import GwiError
from bot.settings import GitHubSettings


def test_from_env_with_inline_key(github_app_key: str) -> None:
    flattened = github_app_key.replace("\n", "\\n")  # as many secret stores keep it
    settings = GitHubSettings.from_env(
        {
            "GITHUB_APP_ID": " 4242 ",
            "GITHUB_PRIVATE_KEY": flattened,
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        }
    )
    assert settings.app_id == "4242"
    assert settings.api_url == "https://ghe.example.com/api/v3"
    shown = repr(settings) + str(settings)
    assert "BEGIN" not in shown


def test_from_env_with_key_path_and_defaults(tmp_path: Path, github_app_key: str) -> None:
    key = tmp_path / "app.pem"
    key.write_text(github_app_key)
    settings = GitHubSettings.from_env({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": str(key)})
    assert settings.api_url == "https://api.github.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "GITHUB_APP_ID is not set"),
        ({"GITHUB_APP_ID": "1"}, "neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH"),
        (
            {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "x", "GITHUB_PRIVATE_KEY_PATH": "y"},
            "only one of",
        ),
        ({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "cannot read"),
        ({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "not a key"}, "is not a PEM private key"),
    ],
)
def test_from_env_failures_are_readable(env: dict[str, str], message: str) -> None:
    with pytest.raises(GwiError, match=message) as info:
        GitHubSettings.from_env(env)
    assert "not a key" not in str(info.value)  # the value itself is never echoed


def test_a_non_rsa_key_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(GwiError, match="not an RSA key"):
        GitHubSettings.from_env({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": pem})


def test_settings_are_frozen_and_validation_hides_input(github_app_key: str) -> None:
    settings = GitHubSettings(app_id="1", private_key=github_app_key)
    with pytest.raises(ValidationError):
        settings.app_id = "2"  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        GitHubSettings(app_id="1", private_key="secret-material", api_url="ftp://x")
    assert "secret-material" not in str(info.value)
