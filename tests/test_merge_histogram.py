"""Regions like `git merge`: the histogram diff equals git merge-tree's merge, byte for byte."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from bot.merge.engine import merge_bytes

SHARED = Path("/work/shared/merge-scenarios")
if not SHARED.is_dir():
    SHARED = Path(__file__).resolve().parents[2] / "shared" / "merge-scenarios"
_LABEL = re.compile(rb"^(<<<<<<<|\|\|\|\|\|\|\||>>>>>>>) .*$", re.MULTILINE)


class Repo:
    """A bare-ish repository where three file versions become two commits to merge."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git("init", "-q")

    def git(self, *args: str, data: bytes | None = None) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            input=data, capture_output=True, check=False,
        ).stdout.decode()

    def merge_tree(self, base: bytes, ours: bytes, theirs: bytes) -> bytes:
        commits: list[str] = []
        for data, message in ((base, "b"), (ours, "o"), (theirs, "t")):
            blob = self.git("hash-object", "-w", "--stdin", data=data).strip()
            tree = self.git("mktree", data=f"100644 blob {blob}\tf\n".encode()).strip()
            parents = ["-p", commits[0]] if commits else []
            commits.append(self.git("commit-tree", tree, *parents, "-m", message).strip())
        out = self.git("-c", "merge.conflictStyle=diff3", "merge-tree", "--write-tree",
                       commits[1], commits[2])
        tree = out.split("\n")[0]
        return subprocess.run(["git", "-C", str(self.path), "cat-file", "blob", f"{tree}:f"],
                              capture_output=True, check=True).stdout


def _same(repo: Repo, base: bytes, ours: bytes, theirs: bytes) -> tuple[bytes, bytes]:
    ours_merge = merge_bytes(base, ours, theirs, "f", resolve=False, diff_algorithm="histogram")
    return _LABEL.sub(rb"\1", ours_merge.to_bytes()), _LABEL.sub(
        rb"\1", repo.merge_tree(base, ours, theirs))


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/merge-scenarios")
def test_histogram_regions_equal_git_merge_tree_on_the_shared_set(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    folders = sorted(p for p in SHARED.glob("*/*") if p.is_dir())[::29]
    checked = 0
    for folder in folders:
        data = [(folder / w).read_bytes() for w in ("base", "ours", "theirs")]
        if any(b"\0" in x or b"\r" in x for x in data):
            continue
        got, want = _same(repo, *data)
        assert got == want, folder
        checked += 1
    assert checked > 80


def test_histogram_regions_equal_git_merge_tree_on_random_inputs(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    rng = random.Random(14)
    words = ["a\n", "b\n", "c\n", "\n", "}\n", "x = 1\n", "return\n"]
    for _ in range(60):
        base = [rng.choice(words) for _ in range(rng.randint(0, 25))]

        def edit(lines: list[str]) -> bytes:
            out = list(lines)
            for _ in range(rng.randint(1, 4)):
                at = rng.randint(0, len(out))
                if out and rng.random() < 0.5:
                    del out[at - 1 : at - 1 + rng.randint(1, 3)]
                else:
                    out[at:at] = [rng.choice(words) for _ in range(rng.randint(1, 3))]
            return "".join(out).encode()

        data = ("".join(base).encode(), edit(base), edit(base))
        got, want = _same(repo, *data)
        assert got == want, data
