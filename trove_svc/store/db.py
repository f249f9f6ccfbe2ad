"""Open the store from a database URL and create its schema."""

from __future__ import annotations

from pathlib import Path

import peewee
from playhouse.db_url import connect

from trove_svc.store.models import MODELS, database_proxy

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def open_store(url: str) -> peewee.Database:
    """Connect the models to `url` and make sure every table exists."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        database = connect(url, pragmas=SQLITE_PRAGMAS)
    else:
        database = connect(url)
    database_proxy.initialize(database)
    with database.connection_context():
        database.create_tables(MODELS, safe=True)
    return database
