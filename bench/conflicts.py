"""Generated repositories whose two branches conflict in a chosen number of files, for benchmarks.

The conflicts are of the kinds real merges have, in turn: both sides bumped the same pin (the
resolver settles it), each side rewrote a different one of two neighbouring entries of a JSON
file (settled), both sides added a name to a sorted AUTHORS list (settled), both sides rewrote the
same line of a Python function (left to a person), and both appended to the same Markdown file
(left to a person). Around them, files nobody touched and files only one side changed.
Deterministic: the same arguments make the same repository.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}
KINDS = ("pin", "json", "authors", "python", "notes")
WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta")


def git(repo: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          env={**os.environ, **GIT_ENV}, check=False)
    if proc.returncode not in ok:
        raise SystemExit(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode().strip()


def _pin(i: int, rng: random.Random) -> tuple[str, str, str, str]:
    names = [f"package-{i}-{n}" for n in range(20)]
    k = rng.randrange(len(names))
    base = [f"{name}==1.{n}.0" for n, name in enumerate(names)]
    ours, theirs = list(base), list(base)
    ours[k] = f"{names[k]}==1.{k}.1"
    theirs[k] = f"{names[k]}==1.{k}.2"
    return (f"deps/{i:04d}/requirements.txt", *("\n".join(t) + "\n" for t in (base, ours, theirs)))


def _json(i: int, rng: random.Random) -> tuple[str, str, str, str]:
    keys = [f"{w}_{n}" for n, w in enumerate(rng.sample(WORDS, 8))]
    k = rng.randrange(1, len(keys) - 2)

    def render(values: dict[str, str]) -> str:
        body = ",\n".join(f'  "{key}": "{values[key]}"' for key in keys)
        return "{\n" + body + "\n}\n"

    base = {key: f"value {n}" for n, key in enumerate(keys)}
    ours = {**base, keys[k]: "ours"}
    theirs = {**base, keys[k + 1]: "theirs"}
    return f"config/{i:04d}/settings.json", render(base), render(ours), render(theirs)


def _authors(i: int, rng: random.Random) -> tuple[str, str, str, str]:
    names = sorted(rng.sample([f"{w.title()} {w[::-1].title()}" for w in WORDS], 8))
    k = rng.randrange(2, 6)
    base = names[:k] + names[k + 2:]
    ours = sorted(base + [names[k]])
    theirs = sorted(base + [names[k + 1]])
    return (f"team/t{i:04d}/AUTHORS", *("".join(f"{n}\n" for n in side)
                                        for side in (base, ours, theirs)))


def _python(i: int, rng: random.Random) -> tuple[str, str, str, str]:
    functions = [f"def step_{n}(value):\n    total = value * {n}\n    return total + {n}\n"
                 for n in range(30)]
    k = rng.randrange(len(functions))
    ours, theirs = list(functions), list(functions)
    ours[k] = f"def step_{k}(value):\n    total = value * {k} + 1\n    return total + {k}\n"
    theirs[k] = f"def step_{k}(value):\n    total = value ** {k}\n    return total + {k}\n"
    return (f"src/s{i:04d}/steps.py",
            *("\n\n".join(side) for side in (functions, ours, theirs)))


def _notes(i: int, rng: random.Random) -> tuple[str, str, str, str]:
    base = "".join(f"- note {n}: {rng.choice(WORDS)}\n" for n in range(12))
    return (f"docs/{i:04d}/notes.md", base, base + "- ours: a new note\n",
            base + "- theirs: another note\n")


MAKERS = {"pin": _pin, "json": _json, "authors": _authors, "python": _python, "notes": _notes}


def conflicts(count: int, seed: int = 8) -> list[tuple[str, str, str, str]]:
    """``count`` (path, base, ours, theirs), the kinds in turn."""
    rng = random.Random(seed)
    return [MAKERS[KINDS[i % len(KINDS)]](i, rng) for i in range(count)]


def untouched(count: int, seed: int = 9) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"lib/l{i:04d}/code.py": "".join(f"X_{n} = '{rng.choice(WORDS)}'\n"
                                             for n in range(40)) for i in range(count)}


def write(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")


def make_repo(repo: Path, conflicted: int, *, others: int | None = None,
              features: tuple[str, ...] = ("feature",)) -> None:
    """A work tree at ``repo``: branch ``main`` and each of ``features`` conflict in
    ``conflicted`` files; ``others`` files (5 per conflict by default) are untouched, and each
    side also changes a few files cleanly."""
    others = 5 * conflicted if others is None else others
    triples = conflicts(conflicted)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    plain = untouched(max(others, 2))
    write(repo, {**plain, **{path: base for path, base, _, _ in triples}})
    git(repo, "commit", "-q", "-m", "base")
    names = sorted(plain)
    for n, feature in enumerate(features):
        git(repo, "checkout", "-q", "-b", feature, "main")
        write(repo, {**{path: ours for path, _, ours, _ in triples},
                     names[0]: plain[names[0]] + f"FEATURE_{n} = True\n"})
        git(repo, "commit", "-q", "-m", f"{feature}: our side")
    git(repo, "checkout", "-q", "main")
    write(repo, {**{path: theirs for path, _, _, theirs in triples},
                 names[-1]: plain[names[-1]] + "MAIN = True\n"})
    git(repo, "commit", "-q", "-m", "main: their side")
