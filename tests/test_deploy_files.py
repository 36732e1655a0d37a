"""The deploy files say what docs/deploy.md promises. Docker cannot build here (no engine), so the
Dockerfile is read instruction by instruction and held to its properties."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_dockerfile_is_slim_non_root_with_git_a_data_volume_and_a_health_check() -> None:
    steps = _instructions((ROOT / "Dockerfile").read_text())
    words = [word for word, _ in steps]
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:3\.1[1-9]-slim", steps[0][1])
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert re.search(r"apt-get install .*\bgit\b", runs)
    user = [rest for word, rest in steps if word == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    env = " ".join(rest for word, rest in steps if word == "ENV")
    data = re.search(r"GWI_DATA_DIR=(\S+)", env)
    assert data is not None
    volumes = " ".join(rest for word, rest in steps if word == "VOLUME")
    assert data.group(1) in volumes
    health = " ".join(rest for word, rest in steps if word == "HEALTHCHECK")
    assert "/healthz" in health
    assert steps[-1] == ("CMD", '["gwi", "serve"]')
    copied = " ".join(rest for word, rest in steps if word == "COPY")
    for needed in ("pyproject.toml", "README.md", "LICENSE", "bot"):
        assert needed in copied and (ROOT / needed).exists()


def test_the_systemd_unit_runs_serve_unprivileged_and_restarts() -> None:
    unit = (ROOT / "deploy" / "gwi.service").read_text()
    assert re.search(r"^ExecStart=\S+/gwi serve$", unit, re.MULTILINE)
    assert re.search(r"^User=(?!root)\w+$", unit, re.MULTILINE)
    assert "Restart=on-failure" in unit and "EnvironmentFile=" in unit
    assert "KillSignal=SIGTERM" in unit


def test_the_licence_is_the_one_pyproject_names() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
