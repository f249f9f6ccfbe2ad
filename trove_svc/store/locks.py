"""A transaction that holds a named lock of the store from its start, so that what one
process reads and then writes under it no other process (of any node) changes meanwhile:
SQLite's write lock, PostgreSQL's advisory lock, MySQL's named lock."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import peewee


@contextmanager
def exclusive(database: peewee.Database, name: str) -> Iterator[None]:
    lock = f"trove-svc-{name}"
    if isinstance(database, peewee.SqliteDatabase):
        with database.atomic(lock_type="IMMEDIATE"):  # the write lock, taken at once
            yield
    elif isinstance(database, peewee.PostgresqlDatabase):
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(lock.encode()),))
            yield
    else:
        with database.atomic():
            database.execute_sql("SELECT GET_LOCK(%s, 30)", (lock,))
            try:
                yield
            finally:
                database.execute_sql("SELECT RELEASE_LOCK(%s)", (lock,))
