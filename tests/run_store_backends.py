"""Both run-store backends behind one fixture: the contract tests run once against the local
folder store and once against a real PostgreSQL server (tests/pg_server.py), with the same
assertions.

`tamper` and `put_back` reach under the interface (a person or a broken disk editing a stored
artifact, someone cutting a bundle back) in either backend's own way; `spec` and `store_from_spec` let a child process open the same store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.runs.folder_store import FolderRunStore
from bot.runs.pg_bundles import PostgresRunStore
from bot.runs.store import RunStore
from bot.runs.verify import VerifyReport, verify_bundle
from bot.schemas.common import sha256_hex

RUN_BACKENDS = ["folder", "postgres"]


@pytest.fixture(params=RUN_BACKENDS)
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """A run store of the test's own: a data folder, or a fresh PostgreSQL database."""
    store: RunStore
    if request.param == "postgres":
        store = PostgresRunStore.connect(request.getfixturevalue("pg_url"), tmp_path / "key.pem")
    else:
        store = FolderRunStore(tmp_path / "data", tmp_path / "key.pem")
    try:
        yield store
    finally:
        store.close()


def spec(store: RunStore) -> tuple[str, str, str]:
    """What another process needs to open the same store: (kind, where, key file)."""
    if isinstance(store, PostgresRunStore):
        return "postgres", store.url, str(store.signing_key)
    assert isinstance(store, FolderRunStore)
    return "folder", str(store.data_dir), str(store.signing_key)


def store_from_spec(kind: str, where: str, key: str) -> RunStore:
    if kind == "postgres":
        return PostgresRunStore.connect(where, Path(key))
    return FolderRunStore(Path(where), Path(key))


def verify(store: RunStore, run_id: str, **options: object) -> VerifyReport:
    """`gwi runs verify` on the run as the store materialises it."""
    with store.materialise(run_id) as folder:
        return verify_bundle(folder, **options)  # type: ignore[arg-type]


def tamper(store: RunStore, run_id: str, name: str, data: bytes) -> None:
    """Replace a stored artifact's bytes behind the store's back."""
    if isinstance(store, PostgresRunStore):
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("UPDATE run_artifacts SET body = %s WHERE run_id = %s AND name = %s",
                         (data, run_id, name))
            if conn.execute("SELECT 1 FROM run_artifacts WHERE run_id = %s AND name = %s",
                            (run_id, name)).fetchone() is None:
                conn.execute("INSERT INTO run_artifacts VALUES (%s, %s, '', %s, 0)",
                             (run_id, name, data))
        return
    assert isinstance(store, FolderRunStore)
    (store.run_dir(run_id) / name).write_bytes(data)


def put_back(store: RunStore, run_id: str, files: dict[str, bytes]) -> None:
    """Replace the whole stored bundle by ``files`` (name -> bytes) behind the store's back: what
    someone with write access to the disk or the database could do."""
    if isinstance(store, FolderRunStore):
        folder = store.run_dir(run_id)
        for entry in folder.iterdir():
            entry.unlink()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return
    assert isinstance(store, PostgresRunStore)
    lines = files["audit.log"].splitlines(keepends=True)
    with psycopg.connect(store.url, autocommit=True) as conn, conn.transaction():
        for table in ("run_signatures", "run_artifacts", "run_audit"):
            conn.execute(f"DELETE FROM {table} WHERE run_id = %s", (run_id,))
        recorded: dict[str, int] = {}
        for line in lines:
            event = json.loads(line)
            conn.execute("INSERT INTO run_audit VALUES (%s, %s, %s, %s, %s)",
                         (run_id, event["seq"], event["action"], event["hash"], line))
            data = event["data"]
            if event["action"] == "artifact_written":
                recorded[data["artifact"]] = event["seq"]
            if "signature" in data and "public_key" in data:
                kind = "final" if event["action"] == "audit_signed" else "seal"
                conn.execute("INSERT INTO run_signatures VALUES (%s, %s, %s, %s, %s)",
                             (run_id, event["seq"], kind, data["public_key"], data["signature"]))
        for name, body in files.items():
            if name != "audit.log":
                conn.execute("INSERT INTO run_artifacts VALUES (%s, %s, %s, %s, %s)",
                             (run_id, name, sha256_hex(body), body, recorded.get(name, 0)))
