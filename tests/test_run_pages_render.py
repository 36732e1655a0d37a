"""The run page's content, rendered from real runs (real git repositories, the real pipeline):
what a person sees of each decision, the whole patch and its hash, the approval and the push,
the audit log verified right now; everything from a run escaped; nothing written to the run."""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agents.llm import make_llm
from bot.engine.local import apply_local, approve_local, start_local_run
from bot.engine.pipeline import Engine
from bot.pages.patch_view import stylesheet
from bot.pages.run_page import render_run_page
from bot.runs.bundle import RunNotFound
from bot.runs.folder_store import FolderRunStore
from bot.runs.view import RunView
from bot.schemas.resolve import ResolveResult
from bot.schemas.state import Outcome, RunState
from tests.builders import resolve as resolve_doc
from tests.fake_llm import json_text
from tests.gate_world import BRANCH, PR, ROLES, approve, awaiting
from tests.support import commit_files, git

STATIC = Path(__file__).resolve().parent.parent / "bot" / "pages" / "static"
XSS = "<script>alert(1)</script>"
BIG_LINES = [f"line {i:05d}: the base branch brought this in" for i in range(4000)]


def _text(page: str) -> str:
    """What a person reads: the page without its tags, entities decoded, blanks collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture
def applied_run(store: FolderRunStore, make_repo: Callable[..., Path]) -> str:
    """Both branches bump one pin (gwi settles it), the base brings a 160 kB file, a binary
    file and a line that is not UTF-8; approved by its hash and applied."""
    repo = make_repo({"requirements.txt": "flask==2.0.0\nrequests==2.0.0\n", "notes.txt": "a\n",
                      "config.yml": "name: app\nx: 1\nend: true\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"requirements.txt": "flask==2.0.0\nrequests==2.1.0\n",
                        "config.yml": "name: app\nx: 2\ny: 3\nend: true\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {
        "requirements.txt": "flask==2.0.0\nrequests==2.2.0\n",
        "config.yml": "name: app\nx: 2\nend: true\n",
        "data/big.txt": "\n".join(BIG_LINES) + "\n",
        "blob.bin": bytes(range(256)) * 4,
        "latin.txt": b"caf\xe9 " + XSS.encode() + b"\n",
    }, "main")
    git(repo, "checkout", "-q", "--detach")
    run_id = start_local_run(store, repo, "main", "feature", "me", {"provider": "offline"})
    Engine(store).advance(run_id)
    view = RunView.load(store, run_id)
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason
    assert view.patch_hash is not None
    approve_local(store, run_id, view.patch_hash, "maintainer")
    assert apply_local(store, run_id, "maintainer").outcome is Outcome.APPLIED
    return run_id


def _page(store: FolderRunStore, run_id: str, **kw: Any) -> str:
    kw.setdefault("trusted_keys", frozenset({store.signer.public_key_hex}))
    return render_run_page(store, run_id, **kw)


def test_the_pipeline_records_each_region_as_git_left_it_and_as_gwi_settled_it(
        store: FolderRunStore, applied_run: str) -> None:
    resolved = store.read_model(applied_run, "resolve.json", ResolveResult)
    assert resolved is not None
    row = {f.path: f for f in resolved.files}["requirements.txt"]
    assert row.region_details is not None and len(row.region_details) == 1
    region = row.region_details[0]
    assert (region.ours, region.theirs, region.base) == (
        "requests==2.1.0\n", "requests==2.2.0\n", "requests==2.0.0\n")
    assert region.resolution == "requests==2.2.0\n"
    assert region.strategy == "version_bump" and region.resolver.value == "deterministic"
    assert [c.value for c in region.checks] == ["no_conflict_markers", "no_lost_lines",
                                                "line_ends"]
    [yaml_region] = {f.path: f for f in resolved.files}["config.yml"].region_details or []
    assert yaml_region.strategy == "subsumed" and yaml_region.resolution == "x: 2\ny: 3\n"
    assert yaml_region.checks[-1].value == "parses"  # the merged YAML was parsed


def test_a_bundle_written_before_regions_were_recorded_still_reads() -> None:
    doc = resolve_doc()
    for f in doc["files"]:
        f.pop("region_details", None)
    assert all(f.region_details is None for f in ResolveResult.model_validate(doc).files)


def test_the_page_shows_the_run_its_decisions_and_whole_patch(store: FolderRunStore,
                                                              applied_run: str) -> None:
    page = _page(store, applied_run)
    text = _text(page)
    ctx = store.read_context(applied_run)
    # 1. state, outcome, timeline, head, base, who started it
    assert "done" in text and "applied" in text
    for entry in ctx.history:
        assert entry.reason in text
    assert ctx.head.sha in text and ctx.base.sha in text and "Started by me" in text
    # 2. the region beside gwi's resolution, with the strategy, explanation and checks
    decided = text.split("2. What gwi decided")[1].split("3. Complexity")[0]
    assert "requirements.txt" in decided and "version_bump" in decided
    resolved = store.read_model(applied_run, "resolve.json", ResolveResult)
    assert resolved is not None
    region = {f.path: f for f in resolved.files}["requirements.txt"].region_details
    assert region is not None and region[0].explanation in decided
    for side in ("requests==2.0.0", "requests==2.1.0", "requests==2.2.0", "no_lost_lines"):
        assert side in decided
    # 3. the score with its rules, the plan, the review
    triage = RunView.load(store, applied_run).triage
    assert triage is not None
    for hit in triage.breakdown:
        assert hit.rule in text and hit.detail in text
    assert f"Complexity {triage.final}/10" in text and "approvable" in text
    # 4. the whole patch (> 100 kB), per file, and its sha256
    patch = store.read_bytes(applied_run, "patch.diff")
    assert patch is not None and len(patch) > 100_000
    assert f"sha256:{hashlib.sha256(patch).hexdigest()}" in text
    patch_part = text.split("4. The patch")[1].split("5. Approval")[0]
    for line in BIG_LINES:
        assert line in patch_part
    assert page.count('<details class="patch-file"') == 4
    assert "caf\ufffd" in patch_part and "GIT binary patch" in patch_part
    # 5. the approval and the push
    record = RunView.load(store, applied_run).approval
    assert record is not None
    approval_part = text.split("5. Approval and push")[1].split("6. Audit log")[0]
    assert "maintainer" in approval_part and record.signature.value in approval_part
    assert "valid" in approval_part and "NOT" not in approval_part
    commit = git(Path(str(ctx.workspace)), "rev-parse", "feature").strip()
    assert f"Commit {commit}" in approval_part and f"still at {ctx.head.sha}" in approval_part
    # 6. the audit log, verified right now
    audit_part = text.split("6. Audit log")[1]
    assert "Verified right now: yes." in audit_part and "intact" in audit_part
    for event in store.read_chain(applied_run).events:
        assert event.hash[:12] in audit_part and event.action.value in audit_part
    assert "<script" not in page.lower()


def test_an_untrusted_key_a_tampered_log_and_anchors_are_shown(store: FolderRunStore,
                                                               applied_run: str) -> None:
    other = "ab" * 32
    text = _text(_page(store, applied_run, trusted_keys=frozenset({other})))
    assert "Verified right now: no." in text and "does NOT trust" in text
    assert "key NOT trusted" in text

    events = store.read_chain(applied_run).events
    assert "Anchor: none recorded" in _text(_page(store, applied_run))
    matched = _text(_page(store, applied_run, anchor=(3, events[3].hash)))
    assert "Anchor: matched" in matched
    rewritten = _text(_page(store, applied_run, anchor=(3, "0" * 64)))
    assert "Anchor: not matched" in rewritten
    beyond = _text(_page(store, applied_run, anchor=(len(events) + 5, events[0].hash)))
    assert "not matched" in beyond and "cut short" in beyond

    log = store.run_dir(applied_run) / "audit.log"
    log.write_bytes(log.read_bytes().replace(b'"maintainer"', b'"mallory"', 1))
    tampered = _text(_page(store, applied_run))
    assert "Verified right now: no." in tampered and "BROKEN" in tampered
    assert "edited" in tampered


def test_rendering_writes_nothing_and_an_unknown_run_is_not_found(store: FolderRunStore,
                                                                  applied_run: str) -> None:
    folder = store.run_dir(applied_run)
    before = _snapshot(folder)
    _page(store, applied_run)
    assert _snapshot(folder) == before
    for unknown in ("20260101T000000Z-abcdefghijklmnopqrst", f"../{applied_run}", "../../etc"):
        with pytest.raises(RunNotFound):
            _page(store, unknown)


def test_regions_left_to_a_person_and_llm_proposals_are_marked_and_escaped(
        store: FolderRunStore, make_repo: Callable[..., Path], fake_llm: Any,
        llm_settings_for: Callable[..., Any]) -> None:
    evil = f"z{XSS}.py"
    repo = make_repo({"a_llm.py": "import os\n\nLIMIT = 10\nNAME = 'app'\n",
                      evil: "TITLE = 't'\nNAME = 'app'\nEND = 1\n"})
    branch = f"feat{XSS}"  # git allows < and > in a branch name
    git(repo, "checkout", "-q", "-b", branch)
    commit_files(repo, {"a_llm.py": "import os\n\nLIMIT = 20\nNAME = 'app'\n",
                        evil: f"TITLE = '{XSS}'\nNAME = 'app'\nEND = 1\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"a_llm.py": "import os\n\nLIMIT = 30\nNAME = 'app'\n",
                        evil: "TITLE = 't'\nNAME = 'other'\nEND = 1\n"}, "main")
    git(repo, "checkout", "-q", "--detach")
    fake_llm.add(json_text({"value": 0, "reasons": []}))
    fake_llm.add(json_text({"regions": [{"region": 0, "resolution": "LIMIT = 30\n",
                                         "explanation": f"newer limit {XSS}",
                                         "confidence": 90}]}))
    # drops the head's new title: the proposal is refused, the region left to a person
    fake_llm.add(json_text({"regions": [{"region": 0, "resolution": "TITLE = 't'\nNAME = 'other'\n",
                                         "explanation": "the base's name",
                                         "confidence": 90}]}))
    settings = llm_settings_for("openai")
    run_id = start_local_run(store, repo, "main", branch, "me", settings.agent_config)
    ctx = Engine(store, llm=make_llm(settings)).advance(run_id)
    assert ctx.outcome is Outcome.NEEDS_HUMAN, ctx.history[-1].reason

    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    assert resolved is not None
    rows = {f.path: f for f in resolved.files}
    llm_region = (rows["a_llm.py"].region_details or [])[0]
    assert llm_region.resolver.value == "llm" and llm_region.model == settings.model
    assert llm_region.resolution == "LIMIT = 30\n"
    left = (rows[evil].region_details or [])[0]
    assert left.resolution is None and left.resolver.value == "none"
    assert XSS in left.ours

    page = _page(store, run_id)
    assert "<script" not in page.lower()
    text = _text(page)
    assert f"Head {branch} at" in text
    decided = text.split("2. What gwi decided")[1].split("3. Complexity")[0]
    assert f"LLM-proposed by {settings.model}" in decided
    assert f"newer limit {XSS}" in decided  # the LLM's reason, as text
    assert "left to a person" in decided and "the conflict markers stay" in decided
    assert evil in decided and f"TITLE = '{XSS}'" in decided
    review = RunView.load(store, run_id).review
    assert review is not None
    finding = next(f for f in review.findings if f.path == evil)
    assert XSS in finding.message and finding.message in text.split("3. Complexity")[1]
    patch_part = text.split("4. The patch")[1].split("5. Approval")[0]
    assert f"TITLE = '{XSS}'" in patch_part and "+<<<<<<< head" in patch_part


def test_a_megabyte_patch_renders_whole_and_fast(store: FolderRunStore,
                                                 make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"requirements.txt": "requests==2.0.0\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"requirements.txt": "requests==2.1.0\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    lines = [f"{i:06d} <b>the base branch's</b> \u00e9 line" for i in range(30_000)]
    commit_files(repo, {"requirements.txt": "requests==2.2.0\n",
                        **{f"data/part{n}.txt": "\n".join(lines[n::3]) + "\n" for n in range(3)}},
                 "main")
    git(repo, "checkout", "-q", "--detach")
    run_id = start_local_run(store, repo, "main", "feature", "me", {"provider": "offline"})
    Engine(store).advance(run_id)
    patch = store.read_bytes(run_id, "patch.diff")
    assert patch is not None and len(patch) > 1_000_000
    started = time.perf_counter()
    page = _page(store, run_id)
    seconds = time.perf_counter() - started
    text = _text(page)
    assert all(f"+{line}" in text for line in lines)
    assert "&lt;b&gt;" in page and "<b>" not in page
    print(f"rendered a {len(patch)}-byte patch's page ({len(page)} bytes) in {seconds:.2f} s")
    assert seconds < 10, f"{seconds:.2f} s to render a 1 MB patch"


def test_the_diff_stylesheet_is_the_one_pygments_writes() -> None:
    assert (STATIC / "diff.css").read_text(encoding="utf-8") == stylesheet()
    assert (STATIC / "run-page.css").is_file()


async def test_a_github_approval_shows_the_role_the_comment_and_the_push(
        make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    run_id = view.ctx.run_id
    done = RunView.load(bot.runs, run_id)
    assert done.ctx.outcome is Outcome.APPLIED and done.approval is not None
    text = _text(render_run_page(bot.runs, run_id,
                                 trusted_keys=frozenset({bot.runs.signer.public_key_hex})))
    assert done.ctx.pull_request is not None
    assert f"pull request #{PR}" in text and done.ctx.pull_request.url in text
    assert "Started by" in text
    approval_part = text.split("5. Approval and push")[1].split("6. Audit log")[0]
    comment = done.approval.comment
    assert comment is not None and comment.url.startswith("http")
    assert f"Approved by maya (github_user) Role at approval {ROLES['maya']}" in approval_part
    assert f"Comment {comment.url}" in approval_part
    pushed = git(bot.remote.bare, "rev-parse", f"refs/heads/{BRANCH}").strip()
    assert f"Commit {pushed}" in approval_part and f"of {bot.repo}" in approval_part
    assert f"still at {done.ctx.head.sha}" in approval_part
    assert "Verified right now: yes." in text


def _awaiting(store: FolderRunStore, make_repo: Callable[..., Path]) -> str:
    repo = make_repo({"requirements.txt": "requests==2.0.0\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"requirements.txt": "requests==2.1.0\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"requirements.txt": "requests==2.2.0\n"}, "main")
    git(repo, "checkout", "-q", "--detach")
    run_id = start_local_run(store, repo, "main", "feature", "me", {"provider": "offline"})
    assert Engine(store).advance(run_id).state is RunState.AWAITING_APPROVAL
    return run_id


def test_a_run_still_going_is_verified_and_signed_at_every_seal(
        store: FolderRunStore, make_repo: Callable[..., Path]) -> None:
    page = _page(store, _awaiting(store, make_repo), static_prefix="/assets/")
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', page) == [
        "/assets/run-page.css", "/assets/diff.css"]
    assert "<script" not in page  # no JavaScript at all
    text = _text(page)
    assert "awaiting_approval" in text and "Outcome not ended" in text
    assert "Verified right now: yes." in text and "Signatures: valid" in text
    assert "Not approved." in text


def test_a_bundle_without_region_records_says_so(store: FolderRunStore,
                                                 make_repo: Callable[..., Path]) -> None:
    run_id = _awaiting(store, make_repo)
    with store.open(run_id) as run:  # resolve.json as gwi wrote it before regions were recorded
        old = run.read_model("resolve.json", ResolveResult)
        assert old is not None
        files = [f.model_copy(update={"region_details": None}) for f in old.files]
        run.write_artifact("resolve.json", old.model_copy(update={"files": files}))
    text = _text(_page(store, run_id))
    assert "written before gwi recorded each region" in text and "version_bump" in text
    assert "Verified right now: yes." in text


def test_a_clean_merge_and_a_damaged_artifact(store: FolderRunStore,
                                              make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n", "b.py": "y = 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"a.py": "x = 2\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"b.py": "y = 2\n"}, "main")
    run_id = start_local_run(store, repo, "main", "feature", "me", {"provider": "offline"})
    assert Engine(store).advance(run_id).outcome is Outcome.NO_CHANGES_NEEDED
    text = _text(_page(store, run_id))
    assert "No patch: the base merges into the head without conflicts" in text
    assert "this run has no resolve.json" in text and "Verified right now: yes." in text

    (store.run_dir(run_id) / "plan.json").write_text('{"summary": "<script>x</script>"}')
    page = _page(store, run_id)
    text = _text(page)
    assert "Damaged artifacts" in text and "plan.json is not valid" in text
    assert "No plan yet" in text and "Verified right now: no." in text
    assert "<script" not in page


def test_a_region_longer_than_what_is_recorded_is_cut_and_says_so(
        store: FolderRunStore, make_repo: Callable[..., Path]) -> None:
    ours = "".join(f"ours {i:05d}\n" for i in range(3000))  # 33,000 characters
    repo = make_repo({"big.txt": "start\nbase\nend\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"big.txt": f"start\n{ours}end\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"big.txt": "start\ntheirs\nend\n"}, "main")
    run_id = start_local_run(store, repo, "main", "feature", "me", {"provider": "offline"})
    assert Engine(store).advance(run_id).outcome is Outcome.NEEDS_HUMAN
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    assert resolved is not None
    [region] = resolved.files[0].region_details or []
    assert region.cut and region.ours == ours[:20_000] and region.theirs == "theirs\n"
    text = _text(_page(store, run_id))
    assert "longer than gwi records: it is cut here" in text
    assert "ours 02999" in text.split("4. The patch")[1]  # the patch has all of it


def test_a_span_gwi_shows_across_release_lines_is_recorded_and_named_as_such(
        store: FolderRunStore, make_repo: Callable[..., Path]) -> None:
    from bot.github.resolution_view import resolution_view
    from tests.test_merge_versions import GRADLE

    repo = make_repo({"platform/build.gradle": GRADLE})
    git(repo, "checkout", "-q", "-b", "forward")
    commit_files(repo, {"platform/build.gradle": GRADLE.replace("4.0.3", "4.1.0-M1")}, "4.1")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"platform/build.gradle": GRADLE.replace("4.0.3", "4.0.4-SNAPSHOT")
                        .replace("6.0.4", "6.0.5-SNAPSHOT")}, "4.0.x")
    git(repo, "checkout", "-q", "--detach")
    run_id = start_local_run(store, repo, "main", "forward", "me", {"provider": "offline"})
    Engine(store).advance(run_id)
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    assert resolved is not None
    [row] = resolved.files
    bump, shown = row.region_details or []
    assert bump.strategy == "version_bump" and not bump.surfaced
    assert shown.surfaced and shown.resolution is None and "6.0.5-SNAPSHOT" in shown.theirs
    assert "merged by git without a conflict; shown by gwi" in _text(_page(store, run_id))
    lines, _ = resolution_view(resolved, 60_000)
    text = "\n".join(lines)
    assert "region 2: a span git merged without a conflict, shown by gwi" in text
    assert "region 1 as git left it, and as gwi resolved it" in text
