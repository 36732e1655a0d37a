"""Which strategy may settle regions in which kind of file, and how far each is trusted.

A strategy is enabled per file kind (code, prose, data, CI configuration, a manifest that
tools rewrite) only where the benchmark's leave-one-project-out procedure found it right on
every project that has such files (`bench/merge_bench.py`, `docs/merge.md`). The shipped
table is `bot/merge/confidence.py`, written by `python bench/merge_bench.py --write-policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

KINDS = ("code", "prose", "data", "ci", "manifest", "gomod")

# Go's module files: the go command checks them against the module graph (a build with
# -mod=readonly, the default, fails on a go.mod that `go mod tidy` would change), so the
# requirement list is the tool's to write, not a text merge's: a kind of their own.
_GO_MODULES = {"go.mod", "go.work"}
# Manifests that tools rewrite (dependency resolvers, release tools, formatters).
_MANIFESTS = {
    "Cargo.toml", "pom.xml", "build.gradle", "build.gradle.kts",
    "settings.gradle", "settings.gradle.kts", "libs.versions.toml", "package.json",
    "pyproject.toml", "Gemfile", "composer.json",
}
_PROSE_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".adoc", ".asciidoc", ".textile")
_PROSE_NAMES = {"CHANGES", "CHANGELOG", "HISTORY", "NEWS", "AUTHORS", "CONTRIBUTORS",
                "README", "LICENSE", "NOTICE", "THANKS", "CREDITS"}
_DATA_SUFFIXES = (".json", ".yml", ".yaml", ".toml", ".ini", ".cfg", ".xml", ".properties",
                  ".conf", ".lock", ".sum")
_CI_FOLDERS = (".github/workflows/", ".circleci/", ".buildkite/", ".azure-pipelines/")
_CI_NAMES = {".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".appveyor.yml",
             "azure-pipelines.yml", "Jenkinsfile", ".cirrus.yml", "tox.ini",
             ".pre-commit-config.yaml", "codecov.yml", ".codecov.yml"}


def kind(path: str) -> str:
    """The kind of file at repo-relative ``path``: one of :data:`KINDS` (pip's requirements
    and constraints files are ``data``, ``gomod`` is Go's go.mod and go.work).

    Manifests that tools rewrite (Cargo.toml, pom.xml, build.gradle, package.json,
    pyproject.toml, ...) are one kind: a rule is trusted on them only where it held on every
    project that has one. (One kind per format was measured too: each format is then seen
    in one to three projects, too few to trust anything on a project left out.)
    """
    name = path.rsplit("/", 1)[-1]
    if name in _GO_MODULES:
        return "gomod"
    if name in _MANIFESTS or name.endswith(".gemspec"):
        return "manifest"
    if name in _CI_NAMES or any(f in "/" + path for f in ("/" + d for d in _CI_FOLDERS)):
        return "ci"
    lower = name.lower()
    if _is_pins(path, lower):
        return "data"
    if lower.endswith(_PROSE_SUFFIXES) or name.split(".")[0].upper() in _PROSE_NAMES:
        return "prose"
    if lower.endswith(_DATA_SUFFIXES):
        return "data"
    return "code"


def _is_pins(path: str, lower: str) -> bool:
    """pip's requirements and constraints files (and pip-tools' .in), one pin a line: data,
    not prose, although they end in .txt. (They were a kind of their own while
    gradle.properties' forward merges kept version bumps off in data files; `version_bump`
    now declines those, and pins seen in one project alone would never be trusted.)"""
    if not lower.endswith((".txt", ".in")):
        return False
    return lower.startswith(("requirements", "constraints")) or "/requirements/" in "/" + path


@dataclass(frozen=True)
class Policy:
    """Enabled (strategy, kind) pairs (None: every pair) and each strategy's confidence."""

    enabled: frozenset[tuple[str, str]] | None = None
    confidence: Mapping[str, int] = field(default_factory=dict)

    def allows(self, strategy: str, file_kind: str) -> bool:
        return self.enabled is None or (strategy, file_kind) in self.enabled

    def confidence_of(self, strategy: str) -> int:
        """The strategy's leave-one-out precision in percent (0 when never measured)."""
        return self.confidence.get(strategy, 0)

    @classmethod
    def from_pairs(cls, pairs: Iterable[Iterable[str]],
                   confidence: Mapping[str, int] | None = None) -> Policy:
        enabled = frozenset((a, b) for a, b in (tuple(p) for p in pairs))
        return cls(enabled=enabled, confidence=dict(confidence or {}))


EVERYTHING = Policy()


def shipped() -> Policy:
    """The policy chosen on all shared projects (bot/merge/confidence.py)."""
    from bot.merge import confidence

    return Policy.from_pairs(confidence.ENABLED, confidence.CONFIDENCE)
