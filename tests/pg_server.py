"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries (`initdb`, `pg_ctl`)
run into a temporary folder on a free port, its unix socket in that folder too.

One server for the whole session (`pg_server`); every test gets a fresh database copied from a
template (`CREATE DATABASE ... TEMPLATE`): `pg_url` one whose schema is migrated already,
`pg_empty_url` one with nothing in it. Without the binaries the tests that need them are skipped
with a clear message, or fail when `GWI_REQUIRE_POSTGRES=1` (CI sets it: there, a missing
server must not pass as skipped). `initdb` refuses to run as root, so as root the server runs as
the `postgres` user (or `nobody`) through `runuser`.

The test server runs with `fsync=off`: a test never survives a power cut, and it makes creating a
database per test cheap. `bench/queue_insert.py` starts one with the defaults (fsync on).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

REQUIRE = "GWI_REQUIRE_POSTGRES"
USER = "gwi"
TEMPLATE = "gwi_migrated"


def find_bin_dir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name)
                      if Path(p).parent.parent.name.isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One `postgres` process in its own folder; :meth:`stop` and :meth:`start` simulate an
    outage (what was committed survives it)."""

    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="gwi-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self._fsync = fsync
        self._names = count(1)
        if self._run_as is not None:
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
        self.root.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1"
                   f" -c unix_socket_directories={self.root} -c max_connections=200"
                   f" -c fsync={'on' if self._fsync else 'off'}"
                   f" -c full_page_writes={'on' if self._fsync else 'off'}")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@/{database}?host={self.root}&port={self.port}"

    def create_database(self, template: str = "template0") -> str:
        """A new empty database (or a copy of ``template``); its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.socket_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user"
                       " for initdb to run as")


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 says PostgreSQL must be tested here",
                    pytrace=False)
    pytest.skip(f"{reason}: install Debian's `postgresql` package to run the PostgreSQL tests")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _missing("PostgreSQL's initdb and pg_ctl are not installed (not on PATH, nor in"
                 " /usr/lib/postgresql/*/bin)")
        raise AssertionError("unreachable")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed")
    started = time.monotonic()
    server = PgServer(bin_dir)
    try:
        _make_template(server)
        print(f"\nPostgreSQL {bin_dir} on port {server.port}, ready in"
              f" {time.monotonic() - started:.1f} s")
        yield server
    finally:
        server.close()


def _make_template(server: PgServer) -> None:
    """A database with the queue's and the run store's schemas applied, that each test's
    database copies."""
    import psycopg

    from bot.queue.pg_store import PostgresQueueStore

    with psycopg.connect(server.socket_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    PostgresQueueStore.open(server.url(TEMPLATE)).close()
    from bot.runs.pg_bundle_schema import migrate

    with psycopg.connect(server.url(TEMPLATE), autocommit=True) as conn:
        migrate(conn)  # the run store's tables (tests/run_store_backends.py)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh database of this test's own, its schema migrated."""
    return pg_server.create_database(TEMPLATE)


@pytest.fixture
def pg_empty_url(pg_server: PgServer) -> str:
    """A fresh, empty database of this test's own."""
    return pg_server.create_database()
