"""`make bench-pr`: whole pull-request runs through `gwi serve`, webhook in to check-run completed.

Starts the fake GitHub of the tests (`tests/fake_github.py`, every request checked against
GitHub's API description) in this process on a loopback port, and a real `gwi serve` (offline
agents) as its own process pointed at it. For pull requests of 1, 20 and 200 conflicted files
(`bench/conflicts.py`, each in a repository of 1,000 other files, served as a real bare git
remote), it sends the signed `pull_request` `opened` webhook and times until GitHub has the
run's check-run completed: intake, queue, fetch, triage, plan, resolve, review and every
report to GitHub on the way. One pull request at a time, five of each size: the first of each
repository fetches all of it (reported as cold), the median of the others is the figure.
Prints one JSON line: the median per size and how it grows. All of it twice: with SQLite, one
`gwi serve` doing everything; then with PostgreSQL (a server this script starts from the
distribution's binaries, fsync on), one `gwi serve --web-only` taking the webhooks and one
`gwi worker` doing the runs (``--backends sqlite`` skips the second).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"
INSTALLATION = 1


def app_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def seed(fake: Any, root: Path, size: int, prs: int, others: int) -> tuple[str, list[int]]:
    """A repository whose ``prs`` pull requests each conflict with main in ``size`` files."""
    from conflicts import git, make_repo

    name = f"bench/size-{size}"
    work, bare = root / f"size-{size}", root / f"size-{size}.git"
    make_repo(work, size, others=others, features=tuple(f"pr-{n}" for n in range(1, prs + 1)))
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    fake.add_repo(name, installation_id=INSTALLATION, clone_url=bare.as_uri())
    main = git(bare, "rev-parse", "refs/heads/main")
    fake.set_ref(name, "heads/main", main)
    numbers = []
    for n in range(1, prs + 1):
        head = git(bare, "rev-parse", f"refs/heads/pr-{n}")
        git(bare, "update-ref", f"refs/pull/{n}/head", head)
        fake.add_pull(name, number=n, head_sha=head, base_sha=main, head_ref=f"pr-{n}")
        numbers.append(n)
    return name, numbers


def opened(fake: Any, repo: str, number: int) -> bytes:
    pull = fake.pull(repo, number)
    owner, name = repo.split("/")
    repository = {"full_name": repo, "name": name, "owner": {"login": owner}}
    user = {"login": pull.user, "id": 5, "type": "User"}
    return json.dumps({
        "action": "opened", "number": number, "installation": {"id": INSTALLATION},
        "repository": repository, "sender": user,
        "pull_request": {"number": number, "state": "open", "draft": False, "user": user,
                         "head": {"ref": pull.head_ref, "sha": pull.head_sha,
                                  "repo": repository},
                         "base": {"ref": "main", "sha": pull.base_sha, "repo": repository}},
    }).encode()


async def one_run(fake: Any, port: int, repo: str, number: int) -> dict[str, Any]:
    """Send the webhook; wait until the run's check-run is completed."""
    import aiohttp

    body = opened(fake, repo, number)
    head = fake.pull(repo, number).head_sha
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
               "X-GitHub-Delivery": f"{repo}#{number}", "X-Hub-Signature-256": signature}
    before = set(fake.check_runs)  # an earlier backend's runs of the same heads do not count
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(
        f"http://127.0.0.1:{port}/webhook", data=body, headers=headers
    ) as response:
        assert response.status == 202, await response.text()
    while True:
        done = [c for n, c in fake.check_runs.items() if n not in before
                and c.repo == repo and c.head_sha == head and c.status == "completed"]
        if done:
            result = {"seconds": time.perf_counter() - started,
                      "conclusion": done[0].conclusion, "title": done[0].output.get("title")}
            break
        if time.perf_counter() - started > 300:
            raise SystemExit(f"{repo}#{number}: no completed check-run after 300 s")
        await asyncio.sleep(0.005)
    # The job goes on to write the pull request's comment: let it finish before the next run.
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                jobs = (await response.json())["jobs"]
            if not jobs["pending"] and not jobs["running"]:
                return result
            await asyncio.sleep(0.01)


async def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from aiohttp import web

    from tests.fake_github import FakeGitHub

    key = app_key()
    fake = FakeGitHub(app_id="1", private_key_pem=key)
    fake.check_responses = False  # the fake checking its own answers is a test of the fake
    fake.add_installation(INSTALLATION, "bench")
    repos = {size: seed(fake, root, size, args.prs, args.others) for size in args.sizes}
    runner = web.AppRunner(fake.make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    env = {**os.environ, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": key,
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": fake.base_url,
           "GWI_HOST": "127.0.0.1", "PORT": "0",
           "GWI_LOG_LEVEL": "INFO", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    env.pop("GWI_LLM_PROVIDER", None)
    env.pop("GWI_DATABASE_URL", None)
    figures: dict[str, Any] = {}
    try:
        for backend in args.backends:
            figures[backend] = await _backend(backend, fake, repos, root / backend, env)
    finally:
        await runner.cleanup()
    first = figures[args.backends[0]]
    return {"bench": "pr_run", "other_files": args.others, "prs_per_size": args.prs,
            "sizes": first["sizes"], "growth": first["growth"],
            "api_calls": len(fake.calls), "backends": figures}


async def _start(command: list[str], env: dict[str, str], log: Path) -> tuple[Any, int]:
    """Start `gwi <command>`; the process and the port it listens on."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *command, env=env, stdout=out,
            stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    for _ in range(3000):
        found = re.search(r"msg=serve\.listening host=\S+ port=(\d+)", log.read_text())
        if found:
            return proc, int(found.group(1))
        if proc.returncode is not None:
            raise SystemExit(f"gwi {command[0]} exited:\n{log.read_text()}")
        await asyncio.sleep(0.01)
    raise SystemExit(f"gwi {command[0]} did not start:\n{log.read_text()}")


async def _backend(backend: str, fake: Any, repos: dict[int, tuple[str, list[int]]],
                   root: Path, env: dict[str, str]) -> dict[str, Any]:
    """Every run through one backend's processes: `gwi serve` on SQLite, or a web-only
    process and a worker on a PostgreSQL server started for it."""
    root.mkdir()
    server = None
    if backend == "sqlite":
        commands = {"serve": ["serve"]}
    else:
        from bot.runs.signing import load_or_create_signer
        from tests.pg_server import PgServer, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            return {"skipped": "PostgreSQL's initdb and pg_ctl are not installed"}
        server = PgServer(bin_dir, fsync=True)
        load_or_create_signer(root / "signing-key.pem", announce=False)
        env = {**env, "GWI_DATABASE_URL": server.url(),
               "GWI_SIGNING_KEY": str(root / "signing-key.pem")}
        commands = {"web": ["serve", "--web-only"], "worker": ["worker"]}
    procs: list[Any] = []
    try:
        port = 0
        for name, command in commands.items():
            proc, listening = await _start(command, {**env, "GWI_DATA_DIR": str(root / name)},
                                           root / f"{name}.log")
            procs.append(proc)
            port = port or listening  # the first process takes the webhooks
        results: dict[int, list[dict[str, Any]]] = {}
        for size, (repo, numbers) in repos.items():
            results[size] = [await one_run(fake, port, repo, n) for n in numbers]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()  # the fake keeps answering while the server finishes
        if server is not None:
            server.close()
    return _figures(results)


def _figures(results: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    # The first run of each repository also fetches all of it into the cache (cold).
    medians = {size: statistics.median(r["seconds"] for r in runs[1:] or runs)
               for size, runs in results.items()}
    smallest, largest = min(medians), max(medians)
    return {
        "sizes": {
            str(size): {"median_s": round(medians[size], 3),
                        "cold_s": round(runs[0]["seconds"], 3),
                        "runs_s": [round(r["seconds"], 3) for r in runs],
                        "check": f"{runs[0]['conclusion']}: {runs[0]['title']}"}
            for size, runs in results.items()
        },
        "growth": {
            "ms_per_conflicted_file": round(1000 * (medians[largest] - medians[smallest])
                                            / max(largest - smallest, 1), 2),
            f"ratio_{largest}_to_{smallest}": round(medians[largest] / medians[smallest], 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 20, 200], help="conflicted files per pull request (1,20,200)")
    parser.add_argument("--prs", type=int, default=5, help="pull requests of each size (5)")
    parser.add_argument("--others", type=int, default=1000, help="other files in each repository")
    parser.add_argument("--backends", type=lambda s: s.split(","), default=["sqlite", "postgres"],
                        help="sqlite (gwi serve), postgres (web-only + worker), or both (default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gwi-bench-pr-") as tmp:
        result = asyncio.run(bench(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
