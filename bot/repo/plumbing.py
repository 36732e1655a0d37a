"""Local git plumbing: revisions, in-memory merges, diffs, blobs, trees, commits, ref updates.

A thin shell over the `git` command. Nothing here touches a user's working tree or index: merges
use `git merge-tree --write-tree`, trees are built in a throwaway index file, and refs move only
by compare-and-swap (`git update-ref <ref> <new> <old>`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import GitError

# Reproducible, private git: no user or system configuration leaks into what gwi computes
# (a user's merge.conflictStyle or diff.noprefix would change patches and hashes).
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    if extra:
        env.update(extra)
    return env


def run_git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", "-C", str(repo), "-c", "core.quotePath=false", *args],
        input=input,
        capture_output=True,
        env=_env(env),
        check=False,
    )
    if proc.returncode not in ok_codes:
        message = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {message}")
    return proc


def git_text(repo: Path, *args: str) -> str:
    return run_git(repo, *args).stdout.decode("utf-8", "replace").strip()


def check_repository(repo: Path) -> Path:
    if not repo.is_dir():
        raise GitError(f"{repo} is not a folder")
    proc = run_git(repo, "rev-parse", "--git-dir", ok_codes=(0, 128))
    if proc.returncode != 0:
        raise GitError(f"{repo} is not a git repository")
    return repo


def resolve_commit(repo: Path, rev: str) -> str:
    """The full commit id ``rev`` names; a clear error when it names nothing or not a commit."""
    if not rev or rev.startswith("-") or "\x00" in rev:
        raise GitError(f"not a revision: {rev!r}")
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                   f"{rev}^{{commit}}", ok_codes=(0, 1, 128))
    if proc.returncode != 0:
        raise GitError(f"{rev!r} does not name a commit in {repo}")
    return proc.stdout.decode().strip()


def merge_base(repo: Path, a: str, b: str) -> str | None:
    proc = run_git(repo, "merge-base", a, b, ok_codes=(0, 1))
    return proc.stdout.decode().strip() or None


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    return run_git(repo, "merge-base", "--is-ancestor", a, b, ok_codes=(0, 1)).returncode == 0


@dataclass(frozen=True)
class Blob:
    mode: str
    oid: str


@dataclass(frozen=True)
class ConflictEntry:
    """A path git could not merge, with its three stages (None where a side has no file)."""

    path: str
    base: Blob | None
    ours: Blob | None
    theirs: Blob | None


@dataclass(frozen=True)
class TreeMerge:
    tree: str  # git's merged tree; conflicted files hold git's markers
    conflicts: tuple[ConflictEntry, ...]
    messages: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge_trees(repo: Path, ours: str, theirs: str) -> TreeMerge:
    """Merge two commits in memory (no work tree, no index): `git merge-tree --write-tree`."""
    proc = run_git(
        repo, "-c", "merge.conflictStyle=diff3", "merge-tree", "--write-tree", "-z",
        "--messages", ours, theirs, ok_codes=(0, 1),
    )
    head, _, rest = proc.stdout.partition(b"\x00\x00")
    fields = head.split(b"\x00")
    tree = fields[0].decode()
    stages: dict[str, dict[int, Blob]] = {}
    for entry in fields[1:]:
        if not entry:
            continue
        meta, _, path_bytes = entry.partition(b"\t")
        mode, oid, stage = meta.decode().split(" ")
        stages.setdefault(path_bytes.decode("utf-8", "surrogateescape"), {})[int(stage)] = Blob(
            mode, oid
        )
    conflicts = tuple(
        ConflictEntry(path, s.get(1), s.get(2), s.get(3)) for path, s in sorted(stages.items())
    )
    messages = _parse_messages(rest)
    if proc.returncode == 1 and not conflicts:
        # e.g. a directory/file conflict that leaves no staged entries: still not clean.
        raise GitError("git merge-tree reported a conflict it could not describe: "
                       + "; ".join(messages))
    return TreeMerge(tree=tree, conflicts=conflicts, messages=messages)


def _parse_messages(raw: bytes) -> tuple[str, ...]:
    parts = raw.split(b"\x00")
    out = []
    i = 0
    while i < len(parts):
        if not parts[i]:
            i += 1
            continue
        try:
            count = int(parts[i])
        except ValueError:
            break
        kind_at = i + 1 + count
        if kind_at + 1 >= len(parts):
            break
        out.append(parts[kind_at + 1].decode("utf-8", "replace").strip())
        i = kind_at + 2
    return tuple(out)


def read_blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Read many blobs in one `git cat-file --batch` process."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    proc = run_git(repo, "cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode())
    out: dict[str, bytes] = {}
    data = proc.stdout
    pos = 0
    for oid in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode().split(" ")
        if len(header) != 3:
            raise GitError(f"blob {oid} is missing from the repository")
        size = int(header[2])
        out[oid] = data[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return out


def write_blobs(repo: Path, contents: Sequence[bytes]) -> list[str]:
    """Store blobs in the object database; return their ids in order."""
    oids = []
    for content in contents:
        proc = run_git(repo, "hash-object", "-w", "--stdin", input=content)
        oids.append(proc.stdout.decode().strip())
    return oids


def tree_with(repo: Path, tree: str, files: Mapping[str, Blob | None]) -> str:
    """A new tree: ``tree`` with each path set to its blob (or removed, for None)."""
    with tempfile.TemporaryDirectory(prefix="gwi-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", tree, env=env)
        lines = []
        for path, blob in sorted(files.items()):
            if blob is None:
                lines.append(f"0 {'0' * 40}\t{path}")
            else:
                lines.append(f"{blob.mode} {blob.oid}\t{path}")
        run_git(repo, "update-index", "-z", "--index-info",
                input=b"".join(line.encode("utf-8", "surrogateescape") + b"\x00" for line in lines),
                env=env)
        return run_git(repo, "write-tree", env=env).stdout.decode().strip()


def read_paths(repo: Path, tree: str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The content of each path in ``tree`` (None where the tree has no such file)."""
    found: dict[str, str] = {}
    if paths:
        out = run_git(repo, "ls-tree", "-z", "--full-tree", tree, "--", *paths).stdout
        for entry in out.split(b"\x00"):
            if not entry:
                continue
            meta, _, name = entry.partition(b"\t")
            _mode, kind, oid = meta.decode().split(" ")
            if kind == "blob":
                found[name.decode("utf-8", "surrogateescape")] = oid
    blobs = read_blobs(repo, found.values())
    return {path: blobs[found[path]] if path in found else None for path in paths}


def changed_paths(repo: Path, old: str, new: str) -> list[str]:
    """The paths whose content differs between tree-ishes ``old`` and ``new``."""
    out = run_git(repo, "diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\x00") if p]


def tree_of(repo: Path, commit: str) -> str:
    return git_text(repo, "rev-parse", f"{commit}^{{tree}}")


def diff_patch(repo: Path, old: str, new: str) -> bytes:
    """A unified diff from tree-ish ``old`` to ``new`` that `git apply` applies exactly."""
    return run_git(
        repo, "diff", "--no-color", "--no-ext-diff", "--full-index", "--binary", "--no-renames",
        "--src-prefix=a/", "--dst-prefix=b/", old, new, "--",
    ).stdout


def apply_patch_to_tree(repo: Path, tree: str, patch: bytes) -> str:
    """Apply ``patch`` to ``tree`` in a throwaway index and return the resulting tree."""
    with tempfile.TemporaryDirectory(prefix="gwi-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", tree, env=env)
        if b"\ndiff --git " in b"\n" + patch:  # leading text alone is no change
            run_git(repo, "apply", "--cached", "--binary", "--whitespace=nowarn", "-",
                    input=patch, env=env)
        return run_git(repo, "write-tree", env=env).stdout.decode().strip()


def commit_tree(
    repo: Path, tree: str, parents: Sequence[str], message: str, env: Mapping[str, str] | None = None
) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return run_git(repo, *args, input=message.encode(), env=env).stdout.decode().strip()


def has_commit(repo: Path, sha: str) -> bool:
    return run_git(repo, "cat-file", "-e", f"{sha}^{{commit}}", ok_codes=(0, 1, 128)).returncode == 0


def update_ref_cas(repo: Path, ref: str, new: str, expected_old: str, reason: str) -> bool:
    """Move ``ref`` to ``new`` only if it still points at ``expected_old``; False if it moved."""
    proc = run_git(repo, "update-ref", "-m", reason, ref, new, expected_old, ok_codes=(0, 128))
    return proc.returncode == 0


@dataclass(frozen=True)
class DiffEntry:
    status: str  # A, M, D, R, T (git's letters)
    path: str
    old_path: str | None
    added: int | None  # None for binary files
    removed: int | None


def diff_entries(repo: Path, old: str, new: str) -> list[DiffEntry]:
    """What changed from ``old`` to ``new``: status, paths (with renames) and line counts."""
    status_raw = run_git(repo, "diff", "--no-ext-diff", "-M", "--name-status", "-z", old, new).stdout
    numstat_raw = run_git(repo, "diff", "--no-ext-diff", "-M", "--numstat", "-z", old, new).stdout
    counts: dict[str, tuple[int | None, int | None]] = {}
    parts = numstat_raw.split(b"\x00")
    i = 0
    while i < len(parts):
        if not parts[i]:
            i += 1
            continue
        added, removed, path = parts[i].split(b"\t", 2)
        if not path:  # a rename: the old and new paths follow
            path = parts[i + 2]
            i += 3
        else:
            i += 1
        counts[path.decode("utf-8", "surrogateescape")] = (
            None if added == b"-" else int(added),
            None if removed == b"-" else int(removed),
        )
    entries = []
    parts = status_raw.split(b"\x00")
    i = 0
    while i < len(parts):
        if not parts[i]:
            i += 1
            continue
        letter = parts[i].decode()[0]
        old_name: str | None = None
        if letter in "RC":
            old_name = parts[i + 1].decode("utf-8", "surrogateescape")
            name = parts[i + 2].decode("utf-8", "surrogateescape")
            i += 3
        else:
            name = parts[i + 1].decode("utf-8", "surrogateescape")
            i += 2
        if letter == "C":  # a copy is, for what a change touches, a new file
            letter, old_name = "A", None
        lines_added, lines_removed = counts.get(name, (0, 0))
        entries.append(DiffEntry(letter, name, old_name, lines_added, lines_removed))
    return sorted(entries, key=lambda e: e.path)
