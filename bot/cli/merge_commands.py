"""The merge commands: `gwi merge-file`, `gwi merge-driver` and `gwi merge-batch`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bot.errors import GwiError

# Exit codes of `git merge-file` and of a git merge driver: 0 clean, 1 conflicts remain.
CLEAN, CONFLICTS, ERROR = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add merge-file, merge-driver and merge-batch to the `gwi` command line."""
    p = subparsers.add_parser(
        "merge-file",
        help="three-way merge of one file, like `git merge-file` (result into CURRENT)",
        description="Merge the changes from BASE to OTHER into CURRENT, settling the "
        "conflicts that can be shown safe. Exit 0 when clean, 1 when conflicts remain.",
    )
    p.add_argument("-p", "--stdout", action="store_true", help="write the result to stdout")
    p.add_argument("--path", help="repo-relative path of the file (decides the language)")
    p.add_argument(
        "-L",
        dest="labels",
        action="append",
        default=[],
        metavar="LABEL",
        help="conflict labels for CURRENT, BASE and OTHER (up to three times)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not report on stderr")
    p.add_argument("current")
    p.add_argument("base")
    p.add_argument("other")
    p.set_defaults(func=merge_file)

    d = subparsers.add_parser(
        "merge-driver",
        help="git merge driver: gwi merge-driver %%O %%A %%B %%P",
        description="A git merge driver. Configure with: git config merge.gwi.driver "
        "'gwi merge-driver %%O %%A %%B %%P' and a .gitattributes line '* merge=gwi'.",
    )
    d.add_argument("ancestor", help="%%O: the merge base's version")
    d.add_argument("current", help="%%A: our version; the result is written here")
    d.add_argument("other", help="%%B: their version")
    d.add_argument("path", nargs="?", default=None, help="%%P: the repo-relative path")
    d.set_defaults(func=merge_driver)

    b = subparsers.add_parser(
        "merge-batch",
        help="merge every scenario folder in IN (base, ours, theirs, meta.json) into OUT",
        description="For each folder NAME in IN, write OUT/NAME/result and a line of "
        "OUT/results.jsonl. Reads only base, ours, theirs and meta.json.",
    )
    b.add_argument("input", metavar="IN")
    b.add_argument("output", metavar="OUT")
    b.add_argument(
        "--policy",
        metavar="JSON",
        help="a file {\"enabled\": [[strategy, kind], ...], \"confidence\": {...}} to use "
        "instead of the shipped table, or \"all\" to let every strategy fire everywhere",
    )
    b.set_defaults(func=merge_batch)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GwiError(f"cannot read {path}: {exc.strerror}", exit_code=ERROR) from exc


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise GwiError(f"cannot write {path}: {exc.strerror}", exit_code=ERROR) from exc


def _report(result: Any, name: str) -> None:
    if result.refused:
        print(f"gwi: {name}: left as a conflict: {result.refused}", file=sys.stderr)
        if not result.generated:
            return
    for region in result.regions:
        state = region.strategy.value
        print(
            f"gwi: {name}: region {region.index + 1} (ours lines {region.ours_start + 1}-"
            f"{region.ours_end}): {state}: {region.explanation}",
            file=sys.stderr,
        )


def merge_file(args: argparse.Namespace) -> int:
    """`gwi merge-file [-p] [--path P] CURRENT BASE OTHER`, with git merge-file's contract."""
    from bot.merge.engine import merge_bytes

    if len(args.labels) > 3:
        raise GwiError("at most three -L labels", exit_code=ERROR)
    defaults = [args.current, args.base, args.other]
    labels = (*args.labels, *defaults[len(args.labels) :])
    data = [_read(p) for p in (args.base, args.current, args.other)]
    path = args.path or args.current
    result = merge_bytes(data[0], data[1], data[2], path, labels=(labels[0], labels[1], labels[2]))
    if not args.quiet:
        _report(result, path)
    if result.refused and not result.generated:
        # Like git with a binary file: the current version stays as it is.
        if args.stdout:
            sys.stdout.buffer.write(data[1])
        return CONFLICTS
    if args.stdout:
        sys.stdout.buffer.write(result.to_bytes())
        sys.stdout.buffer.flush()
    else:
        _write(args.current, result.to_bytes())
    return CLEAN if result.clean else CONFLICTS


def merge_driver(args: argparse.Namespace) -> int:
    """`gwi merge-driver %O %A %B %P`: merge into %A; exit 0 when clean, 1 otherwise."""
    from bot.merge.engine import DEFAULT_LABELS, merge_bytes

    data = [_read(p) for p in (args.ancestor, args.current, args.other)]
    path = args.path or args.current
    result = merge_bytes(data[0], data[1], data[2], path, labels=DEFAULT_LABELS)
    _report(result, path)
    if result.refused and not result.generated:
        return _git_merge_file(args.current, args.ancestor, args.other, DEFAULT_LABELS)
    _write(args.current, result.to_bytes())
    return CLEAN if result.clean else CONFLICTS


def _git_merge_file(current: str, base: str, other: str, labels: tuple[str, ...]) -> int:
    """A file gwi refuses (too large, not UTF-8) gets what git's own text merge makes of it,
    markers included, as if no driver were configured; git leaves a binary file as ours."""
    import subprocess

    command = ["git", "merge-file", "--diff3"]
    for label in labels:
        command += ["-L", label]
    try:
        proc = subprocess.run([*command, current, base, other], capture_output=True, check=False)
    except OSError as exc:
        raise GwiError(f"cannot run git merge-file: {exc}", exit_code=ERROR) from exc
    if proc.stderr:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
    return CLEAN if proc.returncode == 0 else CONFLICTS


def merge_batch(args: argparse.Namespace) -> int:
    """`gwi merge-batch IN OUT`: merge each scenario folder; never reads ``expected``."""
    from bot.merge.engine import merge_bytes

    policy = _policy(getattr(args, "policy", None))
    source, target = str(args.input), str(args.output)
    if not os.path.isdir(source):
        raise GwiError(f"{source} is not a folder", exit_code=ERROR)
    os.makedirs(target, exist_ok=True)
    failures = 0
    # Plain os calls and unbuffered whole-file reads: with thousands of small files the
    # Path objects and buffered streams cost about as much as a fifth of the merging.
    names = sorted(e.name for e in os.scandir(source) if e.is_dir())
    with open(os.path.join(target, "results.jsonl"), "w", encoding="utf-8") as log:
        for name in names:
            folder = os.path.join(source, name)
            record: dict[str, Any] = {"scenario": name}
            try:
                data = [_read_whole(os.path.join(folder, w)) for w in ("base", "ours", "theirs")]
                path = _scenario_path(folder, name)
            except (OSError, ValueError) as exc:
                failures += 1
                record.update(resolved=False, strategies=[], seconds=0.0, error=str(exc))
                log.write(json.dumps(record) + "\n")
                continue
            start = time.perf_counter()
            result = merge_bytes(data[0], data[1], data[2], path, policy=policy)
            seconds = time.perf_counter() - start
            out = os.path.join(target, name)
            if not os.path.isdir(out):
                os.mkdir(out)
            with open(os.path.join(out, "result"), "wb", buffering=0) as f:
                f.write(result.to_bytes())
            record.update(
                resolved=result.clean,
                strategies=[r.strategy.value for r in result.regions],
                seconds=round(seconds, 6),
                path=path,
                regions=len(result.regions),
                regions_resolved=sum(r.resolved for r in result.regions),
                confidence=[r.confidence for r in result.regions],
            )
            if result.refused:
                record["refused"] = result.refused
            if any(r.surfaced for r in result.regions):
                record["surfaced"] = [i for i, r in enumerate(result.regions) if r.surfaced]
            log.write(json.dumps(record) + "\n")
    if failures:
        print(f"gwi: {failures} scenario folder(s) could not be read", file=sys.stderr)
    return CLEAN if not failures else ERROR


def _policy(spec: str | None) -> Any:
    """The policy merge-batch uses: shipped (None), every strategy ("all"), or a JSON file."""
    from bot.merge.policy import EVERYTHING, Policy

    if spec is None:
        return None
    if spec == "all":
        return EVERYTHING
    try:
        data = json.loads(Path(spec).read_text(encoding="utf-8"))
        return Policy.from_pairs(data["enabled"], data.get("confidence", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GwiError(f"cannot read the policy {spec}: {exc}", exit_code=ERROR) from exc


def _read_whole(path: str) -> bytes:
    with open(path, "rb", buffering=0) as f:
        return f.readall()


def _scenario_path(folder: str, name: str) -> str:
    """The file's repo-relative path from meta.json, or the folder name without one."""
    try:
        meta = _read_whole(os.path.join(folder, "meta.json"))
    except FileNotFoundError:
        return name
    value = json.loads(meta.decode("utf-8")).get("path")
    return value if isinstance(value, str) and value else name
