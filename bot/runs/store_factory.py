"""The one place that picks the run store's backend from the settings: PostgreSQL rows when
``GWI_DATABASE_URL`` is set, else the run folders under the data folder. Nothing else knows
which it is (`bot.runs.store.RunStore` is the interface both implement)."""

from __future__ import annotations

from bot.runs.folder_store import FolderRunStore
from bot.runs.store import RunStore
from bot.settings import Settings


def open_run_store(settings: Settings) -> RunStore:
    """Open the run store the settings name (close it with `RunStore.close`); a database that
    cannot be used is a `bot.runs.pg_bundles.RunStoreUnavailable`."""
    url = settings.server.database_url
    if url is not None:
        from bot.runs.pg_bundles import POOL_MAX_SIZE, PostgresRunStore

        # Each open run holds a connection for its lock, and its reads may take another.
        return PostgresRunStore.connect(url.get_secret_value(), settings.signing_key_path,
                                     key_in_work_tree=settings.key_in_work_tree,
                                     max_size=max(POOL_MAX_SIZE, 2 * settings.server.workers))
    return FolderRunStore(settings.data_dir, settings.signing_key_path,
                          key_in_work_tree=settings.key_in_work_tree)
