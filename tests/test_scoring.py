"""The rubric: every rule can fire, paths are classified sensibly, the docs match the code, and
the score behaves (bounded, order-free, never lower for a bigger change)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.schemas import routing
from bot.schemas.triage import (
    ChangeFeatures,
    ChangeStatus,
    FileChange,
    FileKind,
    LlmAdjustment,
    MergeFeatures,
)
from bot.scoring.features import summarise
from bot.scoring.paths import PATH_RULES, classify
from bot.scoring.rubric import RULES, score
from bot.scoring.scorer import triage_result

DOC = Path(__file__).resolve().parent.parent / "docs" / "complexity-rubric.md"
NO_MERGE = MergeFeatures(conflicted_files=0, conflict_regions=0, conflict_lines=0,
                         max_regions_in_file=0, regions_resolvable=0)


def fc(path: str, added: int = 1, removed: int = 0, status: str = "modified",
       **over: Any) -> FileChange:
    kind = over.pop("kind", None) or classify(path, binary=over.get("binary", False))
    return FileChange(path=path, added=added, removed=removed, status=ChangeStatus(status),
                      kind=kind, **over)


def merge(files: int = 1, regions: int = 1, lines: int = 6, max_in_file: int | None = None,
          resolvable: int = 0, unmergeable: int = 0) -> MergeFeatures:
    return MergeFeatures(conflicted_files=files, conflict_regions=regions, conflict_lines=lines,
                         max_regions_in_file=regions if max_in_file is None else max_in_file,
                         regions_resolvable=resolvable, files_unmergeable=unmergeable)


def fired(features: ChangeFeatures) -> set[str]:
    return {hit.rule for hit in score(features).breakdown}


# One input per rule that makes it fire (and the base change that makes none but `base` fire).
PLAIN = summarise([fc("src/app.py", 3, 1)], NO_MERGE)
TRIGGERS: dict[str, ChangeFeatures] = {
    "base": PLAIN,
    "docs_or_tests_only": summarise([fc("docs/a.md"), fc("tests/test_a.py")], NO_MERGE),
    "medium_change": summarise([fc("src/app.py", 40, 20)], NO_MERGE),
    "large_change": summarise([fc("src/app.py", 400, 200)], NO_MERGE),
    "many_files": summarise([fc(f"src/m{i}.py") for i in range(11)], NO_MERGE),
    "very_many_files": summarise([fc(f"src/m{i}.py") for i in range(51)], NO_MERGE),
    "renames_or_deletions": summarise(
        [fc("src/new.py", 0, 0, "renamed", old_path="src/old.py")], NO_MERGE),
    "dependency_change": summarise([fc("pyproject.toml")], NO_MERGE),
    "binary_or_generated": summarise([fc("static/logo.png", 0, 0, binary=True)], NO_MERGE),
    "ci_change": summarise([fc(".github/workflows/ci.yml")], NO_MERGE),
    "infrastructure_change": summarise([fc("Dockerfile")], NO_MERGE),
    "migration_change": summarise([fc("app/migrations/0002_users.py")], NO_MERGE),
    "security_code": summarise([fc("src/auth/login.py")], NO_MERGE),
    "secrets_material": summarise([fc("deploy.pem")], NO_MERGE),
    "conflicts": summarise([fc("src/app.py")], merge(resolvable=1)),
    "resolvable_regions": summarise([fc("src/app.py")], merge(regions=2, resolvable=2)),
    "unresolved_regions": summarise([fc("src/app.py")], merge()),
    "unresolved_region_count": summarise([fc("src/app.py")], merge(regions=3)),
    "unmergeable_files": summarise([fc("src/app.py")], merge(regions=0, lines=0, unmergeable=1)),
    "large_conflict": summarise([fc("src/app.py")], merge(lines=150)),
    "dense_conflict": summarise([fc("src/app.py")], merge(regions=5)),
    "multi_file_conflict": summarise([fc("src/app.py")], merge(files=3, regions=3)),
}


def test_every_rule_has_a_trigger() -> None:
    assert set(TRIGGERS) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", sorted(TRIGGERS))
def test_each_rule_fires(rule: str) -> None:
    assert rule in fired(TRIGGERS[rule])
    if rule != "base":
        assert rule not in fired(PLAIN)


def test_plain_change_fires_only_base() -> None:
    assert fired(PLAIN) == {"base"}
    assert score(PLAIN).baseline == 1


def test_caps_and_rounding() -> None:
    many = summarise([fc("src/app.py")], merge(regions=20, resolvable=0, lines=40))
    hits = {h.rule: h for h in score(many).breakdown}
    assert hits["unresolved_region_count"].points == 3.0
    assert "(capped)" in hits["unresolved_region_count"].detail
    # base 1 + conflicts 1 + resolvable 0.5 (2 x 0.25) = 2.5 -> 3 (half up)
    two = summarise([fc("src/app.py")], merge(regions=2, resolvable=2))
    assert score(two).raw == 2.5 and score(two).baseline == 3


def test_docs_only_scores_lower_than_the_same_change_in_code() -> None:
    docs = summarise([fc("docs/guide.md", 80, 0)], NO_MERGE)
    code = summarise([fc("src/guide.py", 80, 0)], NO_MERGE)
    assert score(docs).raw < score(code).raw


PATHS = {
    ".env": FileKind.SECRETS, "config/.env.production": FileKind.SECRETS,
    ".env.example": FileKind.CONFIG, "certs/server.key": FileKind.SECRETS,
    "home/.ssh/id_ed25519": FileKind.SECRETS, "package-lock.json": FileKind.LOCKFILE,
    "poetry.lock": FileKind.LOCKFILE, "go.sum": FileKind.LOCKFILE,
    "img/logo.png": FileKind.BINARY, "static/app.min.js": FileKind.GENERATED,
    "vendor/lib/x.go": FileKind.GENERATED, "api/user_pb2.py": FileKind.GENERATED,
    "package.json": FileKind.DEPENDENCY_MANIFEST, "requirements-dev.txt":
    FileKind.DEPENDENCY_MANIFEST, "pyproject.toml": FileKind.DEPENDENCY_MANIFEST,
    ".github/workflows/test.yml": FileKind.CI, ".gitlab-ci.yml": FileKind.CI,
    "Dockerfile": FileKind.INFRASTRUCTURE, "docker-compose.prod.yml": FileKind.INFRASTRUCTURE,
    "k8s/deployment.yaml": FileKind.INFRASTRUCTURE, "main.tf": FileKind.INFRASTRUCTURE,
    "config/settings.yaml": FileKind.CONFIG, "app.yml": FileKind.CONFIG,
    "db/migrations/0001_initial.py": FileKind.MIGRATION,
    "alembic/versions/abc_add_users.py": FileKind.MIGRATION,
    "tests/test_auth.py": FileKind.TEST, "src/foo_test.go": FileKind.TEST,
    "web/button.spec.tsx": FileKind.TEST, "conftest.py": FileKind.TEST,
    "docs/index.md": FileKind.DOCS, "README.md": FileKind.DOCS, "CHANGES.rst": FileKind.DOCS,
    "LICENSE": FileKind.DOCS, "src/auth/views.py": FileKind.SECURITY,
    "lib/session.js": FileKind.SECURITY, "src/password_reset.ts": FileKind.SECURITY,
    "src/tokenizer.py": FileKind.SOURCE, "src/author.py": FileKind.SOURCE,
    "setup.cfg": FileKind.DEPENDENCY_MANIFEST, "tox.ini": FileKind.CONFIG,
    ".gitignore": FileKind.CONFIG, "Makefile": FileKind.CONFIG,
    "src/flask/app.py": FileKind.SOURCE, "lib/router/index.js": FileKind.SOURCE,
    "data/blob.unknown": FileKind.OTHER,
}


@pytest.mark.parametrize(("path", "kind"), sorted(PATHS.items()))
def test_path_classification(path: str, kind: FileKind) -> None:
    assert classify(path) is kind


def test_binary_content_makes_a_file_binary_unless_it_is_secret_or_a_lockfile() -> None:
    assert classify("data/blob.unknown", binary=True) is FileKind.BINARY
    assert classify("deploy.p12", binary=True) is FileKind.SECRETS
    assert classify("bun.lockb", binary=True) is FileKind.LOCKFILE


def _table(heading: str) -> list[list[str]]:
    text = DOC.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]
            if not row.startswith("| ---")]


def test_the_docs_rule_table_is_the_code() -> None:
    rows = _table("The rules")
    expected = [
        [f"`{r.name}`",
         f"{r.points:+g}" + (f" each, at most {r.cap:+g}" if r.cap is not None else ""), r.when]
        for r in RULES
    ]
    assert rows == expected


def test_the_docs_path_table_is_the_code() -> None:
    rows = _table("File kinds")
    expected = [[str(i), f"`{r.kind.value}`", r.description]
                for i, r in enumerate(PATH_RULES, 1)]
    assert rows == expected


def test_the_docs_routing_table_is_the_code() -> None:
    rows = _table("Routing")
    spans = [re.findall(r"\d+", row[0]) for row in rows]
    assert spans == [["1", str(routing.DETERMINISTIC_MAX)],
                     [str(routing.DETERMINISTIC_MAX + 1), str(routing.AGENT_MAX)],
                     [str(routing.AGENT_MAX + 1), "10"]]
    assert [row[1] for row in rows] == [f"`{r.value}`" for r in routing.Route]


def test_routing_thresholds() -> None:
    assert [routing.route_for(s).value for s in range(1, 11)] == (
        ["deterministic"] * 3 + ["agent"] * 3 + ["human"] * 4)
    with pytest.raises(ValueError):
        routing.route_for(0)


def test_adjustment_moves_final_within_bounds() -> None:
    big = TRIGGERS["very_many_files"]
    assert triage_result(None, big).adjustment == LlmAdjustment()
    raised = triage_result(None, TRIGGERS["secrets_material"],
                           LlmAdjustment(value=2, reasons=["security_risk"]))  # type: ignore[list-item]
    assert raised.final == min(10, raised.baseline + 2)
    lowered = triage_result(None, PLAIN, LlmAdjustment(value=-2, reasons=["clear_intent"]))  # type: ignore[list-item]
    assert lowered.final == 1


# -- properties ---------------------------------------------------------------------------

_paths = st.sampled_from(sorted(PATHS)) | st.from_regex(r"[a-z]{1,8}/[a-z_]{1,10}\.(py|js|md|yml)",
                                                         fullmatch=True)


@st.composite
def changes(draw: st.DrawFn) -> tuple[list[FileChange], MergeFeatures]:
    paths = draw(st.lists(_paths, min_size=0, max_size=15, unique=True))
    files = [fc(p, draw(st.integers(0, 400)), draw(st.integers(0, 400)),
                draw(st.sampled_from(["added", "modified", "deleted"]))) for p in paths]
    conflicted = draw(st.integers(0, min(len(files), 6)))
    regions = draw(st.integers(conflicted, conflicted * 6)) if conflicted else 0
    unmergeable = draw(st.integers(0, conflicted))
    m = MergeFeatures(
        conflicted_files=conflicted, conflict_regions=regions,
        conflict_lines=regions * draw(st.integers(3, 40)),
        max_regions_in_file=draw(st.integers(min(regions, 1), regions)) if regions else 0,
        regions_resolvable=draw(st.integers(0, regions)), files_unmergeable=unmergeable)
    return files, m


@settings(max_examples=150, deadline=None)
@given(changes(), st.randoms())
def test_score_is_bounded_and_order_free(change: tuple[list[FileChange], MergeFeatures],
                                         rnd: Any) -> None:
    files, m = change
    first = score(summarise(files, m))
    shuffled = list(files)
    rnd.shuffle(shuffled)
    assert score(summarise(shuffled, m)) == first
    assert 1 <= first.baseline <= 10


@settings(max_examples=150, deadline=None)
@given(changes(), st.data())
def test_a_change_that_only_grows_never_scores_lower(
    change: tuple[list[FileChange], MergeFeatures], data: st.DataObject
) -> None:
    files, m = change
    before = score(summarise(files, m)).raw
    grown = list(files)
    how = data.draw(st.sampled_from(["file", "lines", "region", "resolvable", "unmergeable"]))
    if how == "file":
        extra = data.draw(_paths.filter(lambda p: p not in {f.path for f in files}))
        grown.append(fc(extra, data.draw(st.integers(0, 50))))
    elif how == "lines" and grown:
        grown[0] = grown[0].model_copy(update={"added": grown[0].added + 100})
    elif how == "region":
        m = m.model_copy(update={
            "conflicted_files": max(1, m.conflicted_files), "conflict_regions":
            m.conflict_regions + 1, "conflict_lines": m.conflict_lines + 5,
            "max_regions_in_file": max(1, m.max_regions_in_file)})
    elif how == "resolvable" and m.regions_resolvable < m.conflict_regions:
        m = m.model_copy(update={
            "conflict_regions": m.conflict_regions + 1, "conflict_lines": m.conflict_lines + 3,
            "regions_resolvable": m.regions_resolvable + 1})
    elif how == "unmergeable" and m.files_unmergeable < m.conflicted_files:
        m = m.model_copy(update={"files_unmergeable": m.files_unmergeable + 1})
    m = MergeFeatures.model_validate(m.model_dump())
    assert score(summarise(grown, m)).raw >= before
