"""Open the store from a database URL and bring its schema up to date."""

from __future__ import annotations

import os
from pathlib import Path

import peewee
from playhouse.db_url import connect
from pymysql.constants import CLIENT

from trove_svc.store import migrations
from trove_svc.store.models import database_proxy

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def _private_sqlite_files(path: Path) -> None:
    """The store holds every project's records: only the service's account may read it."""
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        candidate = path.with_name(name)
        if candidate.exists():
            os.chmod(candidate, 0o600)


def open_store(url: str) -> peewee.Database:
    """Connect the models to `url` and make sure the schema is current."""
    sqlite_path: Path | None = None
    if url.startswith("sqlite:///"):
        sqlite_path = Path(url.removeprefix("sqlite:///"))
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        if not sqlite_path.exists():
            sqlite_path.touch(mode=0o600)
        database = connect(url, pragmas=SQLITE_PRAGMAS)
    elif url.startswith("mysql"):
        # An UPDATE's count is of the rows it matched, as on SQLite and PostgreSQL (MySQL
        # counts those it changed): a compare-and-set that writes what is already there
        # still says it held.
        database = connect(url, client_flag=CLIENT.FOUND_ROWS)
    else:
        database = connect(url)
    database_proxy.initialize(database)
    with database.connection_context():
        migrations.upgrade(database)
    if sqlite_path is not None:
        _private_sqlite_files(sqlite_path)
    return database
